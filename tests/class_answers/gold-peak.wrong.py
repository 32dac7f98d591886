    best = points.loc[points.groupby("run")["KL"].idxmax()]  # the farthest point, not the best
