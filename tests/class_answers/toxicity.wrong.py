    return logits.softmax(dim=-1)[:, 1]  # the column this classifier happens to use
