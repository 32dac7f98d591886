lora_kwargs = {"r": settings.lora_r, "lora_alpha": settings.lora_alpha,
               "lora_dropout": settings.lora_dropout, "target_modules": settings.lora_targets,
               "bias": "none", "task_type": TaskType.SEQ_2_SEQ_LM}
ppo_kwargs = {"learning_rate": settings.learning_rate, "batch_size": settings.batch_size,
              "mini_batch_size": settings.mini_batch_size, "ppo_epochs": settings.ppo_epochs,
              "init_kl_coef": settings.init_kl_coef, "adap_kl_ctrl": settings.adaptive_kl,
              "target": settings.target_kl, "horizon": settings.kl_horizon,
              "seed": settings.seed}
lora_config = LoraConfig(**lora_kwargs)
ppo_config = PPOConfig(**ppo_kwargs, **plumbing)
