        stats = ppo_trainer.step(queries, queries, rewards)  # prompts as responses
