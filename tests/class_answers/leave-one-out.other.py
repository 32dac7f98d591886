    k = shaped.shape[1]
    others = torch.empty_like(shaped)
    for i in range(k):
        siblings = torch.cat([shaped[:, :i], shaped[:, i + 1:]], dim=1)
        others[:, i] = siblings.mean(dim=1)
    advantages = (shaped - others).reshape(-1)
