    output_ids = policy.generate(input_ids=prompt_ids, **generation_kwargs)
    summary = tokenizer.decode(output_ids[0], skip_special_tokens=True).strip()
    logits = reward_model.logits([summary])[0]
    reward = logits[0].item()  # by position: whichever label the classifier lists first
    toxicity = reward_model.toxicity_of(logits).item()
