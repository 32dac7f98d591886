    others = shaped.mean(dim=1, keepdim=True)  # its own reward included
    advantages = (shaped - others).view(-1)
