"""src.score splits lwlrap by single-label and multi-label clips (hand-computed)."""
import pandas as pd

from src import score


def test_single_and_multi_label_clips_are_scored_apart(tmp_path, capsys):
    sol = pd.DataFrame({"fname": ["c1", "c2", "c3", "c4"], "A": [1, 0, 1, 0], "B": [0, 1, 1, 1], "C": [0, 0, 0, 1]})
    sub = pd.DataFrame({"fname": ["c1", "c2", "c3", "c4"], "A": [.9, .8, .7, .9], "B": [.1, .2, .6, .3],
                        "C": [0, 0, .1, .2]})
    sol.to_csv(tmp_path / "sol.csv", index=False)
    sub.to_csv(tmp_path / "sub.csv", index=False)
    assert score.main([str(tmp_path / "sub.csv"), str(tmp_path / "sol.csv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # precision of each true label at its rank: c1 A 1, c2 B 1/2; c3 A 1, B 2/2; c4 B 1/2, C 2/3
    assert "single-label: lwlrap 0.7500 over 2 clips" in lines
    assert f"multi-label: lwlrap {(1 + 1 + 1 / 2 + 2 / 3) / 4:.4f} over 2 clips" in lines
    assert lines[-1] == f"lwlrap {(1 + 1 / 2 + 1 + 1 + 1 / 2 + 2 / 3) / 6:.4f} over 4 clips"
    sol.iloc[:2].to_csv(tmp_path / "singles.csv", index=False)             # one kind only: no split lines
    assert score.main([str(tmp_path / "sub.csv"), str(tmp_path / "singles.csv")]) == 0
    assert not any("single-label" in l for l in capsys.readouterr().out.splitlines())


def test_the_oof_report_scores_single_and_multi_label_clips_apart(monkeypatch):
    import numpy as np

    from src.fat2019.competition import FAT2019
    from src.kit import predict, runs

    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 1]], float)
    s = np.array([[.9, .1, 0], [.8, .2, 0], [.7, .6, .1], [.9, .3, .2]])

    class Data:
        labels = ["A", "B", "C"]

        def truth(self, ids):
            return y[[int(i) for i in ids]]

    def fake_oof(found, labels, truth, metric, weights):
        ids = ["0", "1", "2", "3"]
        return {"cnn": metric(truth(ids), s)}, ids, {"cnn": s}, truth(ids)

    monkeypatch.setattr(runs, "oof_scores", fake_oof)
    line = predict.oof_report(FAT2019, {"cnn": []}, Data(), ["A", "B", "C"], None)
    assert line.endswith(f"(cnn: single-label 0.7500 over 2; multi-label {(1 + 1 + 1 / 2 + 2 / 3) / 4:.4f} over 2)")
