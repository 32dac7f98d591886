    summary = tokenizer.batch_decode(policy.generate(prompt_ids, **generation_kwargs),
                                     skip_special_tokens=True)[0].strip()
    logits = reward_model.logits([summary])[0]
    clean, hate = reward_model.clean, reward_model.toxic_indices[0]
    reward = float(logits[clean])
    toxicity = torch.sigmoid(logits[hate] - logits[clean]).item()  # a two-label softmax
