    length = len(row["dialogue"])
    if length <= settings.min_dialogue_chars:
        return False
    return not length > settings.max_dialogue_chars
