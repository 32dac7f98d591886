        stats = ppo_trainer.step(queries=queries, responses=responses, scores=rewards)
