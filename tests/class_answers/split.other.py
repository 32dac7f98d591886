    from datasets import DatasetDict

    cut = prompts.num_rows - math.ceil(prompts.num_rows * settings.test_fraction)
    return DatasetDict(train=prompts.select(range(cut)),
                       test=prompts.select(range(cut, prompts.num_rows)))
