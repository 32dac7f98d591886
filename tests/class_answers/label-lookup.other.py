    for key, label in id2label.items():
        if label == name:
            return key
    raise KeyError(f"no label {name!r} in {id2label}")
