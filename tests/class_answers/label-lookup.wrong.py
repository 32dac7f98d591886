    return 0 if name == 'nothate' else 1  # the original's not_hate_index = 0
