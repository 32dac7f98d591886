    return prompts.train_test_split(test_size=settings.test_fraction)  # shuffled
