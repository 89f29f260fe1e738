from cwpo.experiments.tables import format_summary


def test_summary_table_shows_metric_std_and_weak_label_accuracy():
    groups = [
        {"method": "human", "gra": 0.55, "gra_seed_std": 0.02, "n_seeds": 3, "weak_label_acc": None},
        {"method": "cw", "gra": 0.5, "gra_seed_std": None, "n_seeds": 1, "weak_label_acc": 0.613},
    ]
    lines = format_summary(groups).splitlines()
    assert "GRA vs SFT" in lines[0] and "weak-label acc" in lines[0]
    assert lines[1].split() == ["human", "55.0", "±", "2.0", "3", "–"]
    assert lines[2].split() == ["cw", "50.0", "1", "61.3"]


def test_summary_table_uses_preference_accuracy_and_grid_columns():
    groups = [{"method": "cw", "data.labeled_frac": 0.1, "pref_acc": 0.6, "n_seeds": 2}]
    lines = format_summary(groups).splitlines()
    assert "pref. accuracy" in lines[0] and "labeled_frac" in lines[0]
    assert lines[1].split() == ["0.1", "cw", "60.0", "2", "–"]
    assert format_summary([]) == "(no results)"
