import numpy as np

from xray_qc_train.metrics import balanced_accuracy, confusion, count_inside, operating_point, pooled, review_band


def test_balanced_accuracy_per_bundle_and_pooled():
    labels = np.array([1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.1, 0.6, 0.2, 0.5])
    c = confusion(labels, p)
    assert c == {'tp': 1, 'fn': 1, 'tn': 2, 'fp': 2}
    assert balanced_accuracy(c) == (0.5 + 0.5) / 2
    one_class = confusion(np.array([0, 0, 0]), np.array([0.1, 0.7, 0.2]))
    assert balanced_accuracy(one_class) == 2 / 3  # the recall of the class present
    both = pooled([c, one_class])
    assert balanced_accuracy(both) == (1 / 2 + 4 / 7) / 2


def test_operating_points():
    labels = np.array([1] * 10 + [0] * 10)
    p = np.concatenate([np.linspace(0.3, 0.95, 10), np.linspace(0.05, 0.6, 10)])
    assert operating_point('argmax', labels, p) == 0.5
    t = operating_point('miss-rate:0.2', labels, p)
    missed = np.mean(p[labels == 1] < t)
    assert missed <= 0.2 and np.mean(p[labels == 1] < np.nextafter(t, 2)) > 0.2  # the highest such t
    tb = operating_point('balanced', labels, p)
    ba = lambda th: balanced_accuracy(confusion(labels, p, th))
    assert all(ba(tb) >= ba(th) for th in np.unique(p))


def test_review_band_holds_at_most_the_share():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200)
    lo, hi = review_band('auto:0.1', 0.5, p)
    inside = np.sum((p >= lo) & (p < hi))
    assert inside <= 20 and inside >= 18 and abs((lo + hi) / 2 - 0.5) < 1e-12
    assert count_inside(p, 0.5, (hi - lo) / 2) == inside
    assert review_band(None, 0.5, p) is None
