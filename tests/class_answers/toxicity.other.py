    return torch.sigmoid(logits[:, hate] - logits[:, 1 - hate])
