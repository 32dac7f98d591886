    return (settings.min_dialogue_chars <= len(row["dialogue"])
            < settings.max_dialogue_chars)  # the edges the other way round
