    best = (points.sort_values("gold", ascending=False, kind="stable")
            .drop_duplicates("run"))
