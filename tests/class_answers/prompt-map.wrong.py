    row["input_ids"] = tokenizer.encode(prompt)
    row["query"] = tokenizer.decode(row["input_ids"])  # keeps </s>
