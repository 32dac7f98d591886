    row["input_ids"] = tokenizer(prompt).input_ids
    row["query"] = tokenizer.batch_decode([row["input_ids"]], skip_special_tokens=True)[0]
