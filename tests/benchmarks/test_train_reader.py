"""The reader training script's losses (benchmarks/train_reader.py): no data or training needed."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import train_reader  # noqa: E402

from rag.answer_check import CHECKED, FEATURES  # noqa: E402


def test_distillation_loss_is_zero_only_when_the_student_agrees_and_ignores_masked_tokens():
    rng = np.random.default_rng(0)
    student = torch.from_numpy(rng.normal(size=(2, 6, 2)).astype(np.float32))
    student[:, 4:] = -1e4  # outside the passage
    teacher = student.clone()
    teacher[:, 4:] = 7.0  # whatever a teacher scored there must not count
    assert train_reader._distill_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-6)
    teacher[0, 1, 0] += 3.0  # the teachers prefer another start
    assert train_reader._distill_loss(student, teacher).item() > 0.01


def test_annotation_shares_weigh_agreeing_annotators():
    shares = train_reader._annotation_shares(np.array([[3, 3, 5], [-1, -1, -1]]), np.array([3, 0]), 8)
    assert shares[0, 3].item() == pytest.approx(2 / 3) and shares[0, 5].item() == pytest.approx(1 / 3)
    assert shares[1, 0].item() == 1.0  # no annotation aligned: the first one's token (here no answer)


def test_soup_averages_finished_runs_and_refuses_unfinished_or_missing_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(train_reader, "WORK", tmp_path)
    monkeypatch.setattr(train_reader, "SOUP", (14, 15))

    def run(seed, value, step=1440):
        state = {"layers": {"0.w": torch.full((2,), value)}, "head": {"weight": torch.full((1,), value)}, "step": step}
        torch.save(state, tmp_path / f"checkpoint-{train_reader.setting(seed)}.pt")
        (tmp_path / f"seconds-{train_reader.setting(seed)}.json").write_text('{"train": 100}')

    run(14, 1.0)
    with pytest.raises(SystemExit, match="train --train-seed 15"):
        train_reader.stage_soup()
    run(15, 3.0, step=700)
    with pytest.raises(SystemExit, match="different steps"):
        train_reader.stage_soup()
    run(15, 3.0)
    train_reader.stage_soup()
    soup = torch.load(train_reader.checkpoint_file(), weights_only=False)
    assert train_reader.checkpoint_file().name.endswith("-soup14-15.pt")
    assert soup["layers"]["0.w"].tolist() == [2.0, 2.0] and soup["head"]["weight"].item() == 2.0
    assert soup["soup_of"] == [14, 15] and soup["step"] == 1440
    with pytest.raises(SystemExit, match="not trained"):
        train_reader.stage_train()


def test_no_stage_named_runs_every_stage_and_a_soup_runs_only_its_own(tmp_path, monkeypatch):
    ran = []
    for name in ("WORK", "FROZEN", "EPOCHS", "LR", "INIT", "TRAIN_SEED", "PRECISION", "TEACHERS", "SOUP"):
        monkeypatch.setattr(train_reader, name, getattr(train_reader, name))  # main() sets them; restored after
    monkeypatch.setattr(train_reader, "WORK", tmp_path)
    for name in train_reader.STAGES:
        monkeypatch.setitem(train_reader.STAGES, name, lambda name=name: ran.append(name))
    monkeypatch.setattr(sys, "argv", ["train_reader.py"])
    train_reader.main()
    assert ran == list(train_reader.STAGES)
    ran.clear()
    monkeypatch.setattr(sys, "argv", ["train_reader.py", "--soup-seeds", "14,15"])
    train_reader.main()
    assert ran == ["soup", "export", "calibrate"]


def test_each_example_option_gets_its_own_work_folder_and_checkpoint_name(tmp_path, monkeypatch):
    names = ("WORK", "FROZEN", "EPOCHS", "LR", "INIT", "TRAIN_SEED", "PRECISION", "TEACHERS", "SOUP")
    for name in (*names, "SYNONYM_SHARE", "MORE_SWAP_SHARE"):
        monkeypatch.setattr(train_reader, name, getattr(train_reader, name))  # main() sets them; restored after
    monkeypatch.setattr(train_reader, "WORK", tmp_path / "reader-train")
    (tmp_path / "reader-train-synonyms-swaps").mkdir()  # where main() records the stage's seconds
    plain = train_reader.setting()
    assert "swaps" not in plain and "synonyms" not in plain
    seen = []
    monkeypatch.setitem(
        train_reader.STAGES, "export", lambda: seen.append((train_reader.WORK.name, train_reader.setting()))
    )
    monkeypatch.setattr(sys, "argv", ["train_reader.py", "export", "--synonym-positives", "--more-swaps"])
    train_reader.main()
    assert seen == [("reader-train-synonyms-swaps", plain + "-synonyms0.3-swaps0.7")]


def test_the_judging_scripts_read_the_calibration_questions_of_the_setting_their_flags_name(tmp_path, monkeypatch):
    import calibration_noise
    import check_features

    for name in ("WORK", "SYNONYM_SHARE", "TRADITIONAL_SHARE", "MORE_SWAP_SHARE"):
        monkeypatch.setattr(train_reader, name, getattr(train_reader, name))
    monkeypatch.setattr(train_reader, "WORK", tmp_path / "reader-train")
    folders = []

    def stop(*args, **kwargs):
        folders.append(train_reader.WORK.name)
        raise SystemExit(0)

    for script in (check_features, calibration_noise):
        monkeypatch.setattr(script, "check_exports", stop)
        argv = [script.__name__, str(tmp_path), "--synonym-positives", "--traditional-twins", "--more-swaps"]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit):
            script.main()
        monkeypatch.setattr(train_reader, "WORK", tmp_path / "reader-train")
    assert folders == ["reader-train-synonyms-traditional-swaps"] * 2


def test_pick_threshold_matches_trying_every_threshold_and_respects_the_false_abstention_bound():
    rng = np.random.default_rng(1)
    for _ in range(50):
        answerable = rng.random(120) < 0.6
        scores = np.round(rng.normal(size=120) * 4 + 3 * answerable, 3)
        f1s = np.where(answerable, rng.random(120).round(2), 0.0)
        best = None  # the rule, tried threshold by threshold
        for t in np.unique(np.round(scores, 2)):
            answered = scores >= t
            if (~answered)[answerable].mean() > train_reader.MAX_FALSE_ABSTENTION:
                continue
            utility = np.where(answerable, f1s * answered, ~answered).mean()
            if best is None or utility > best[0]:
                best = (utility, t)
        utility, threshold = train_reader.pick_threshold(scores, f1s, answerable)
        assert utility == pytest.approx(best[0]) and threshold == best[1]
    assert train_reader.pick_threshold(np.array([1.0, 2.0]), np.array([1.0, 1.0]), np.array([True, True])) == (
        1.0,
        1.0,
    )


def test_fit_confidence_recovers_a_known_logistic_and_reports_bands():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=4000) * 5
    chance = 1 / (1 + np.exp(-(0.6 * scores - 1.0)))
    answerable = np.ones(4000, bool)
    right = rng.random(4000) < chance  # 0/1 F1s drawn at that chance
    fit = train_reader.fit_confidence(scores, right.astype(float), answerable, threshold=-2.0)
    assert fit["slope"] == pytest.approx(0.6, abs=0.05) and fit["intercept"] == pytest.approx(-1.0, abs=0.1)
    assert [b["band"] for b in fit["bands_answered"]] == ["0-0.5", "0.5-0.8", "0.8-1"]
    assert sum(b["answered"] for b in fit["bands_answered"]) == int((scores >= -2.0).sum())
    assert fit["expected_calibration_error_answered"] < 0.03
    # an unanswerable question counts as a wrong answer, whatever F1 its span was given
    unanswerable = train_reader.fit_confidence(scores, np.ones(4000), rng.random(4000) < 0.5, threshold=-2.0)
    said = 1 / (1 + np.exp(-(unanswerable["slope"] * scores + unanswerable["intercept"])))
    assert abs(said.mean() - 0.5) < 0.02


def test_auc_counts_ties_half():
    answerable = np.array([True, True, False, False])
    assert train_reader.auc(np.array([3.0, 2.0, 1.0, 0.0]), answerable) == 1.0
    assert train_reader.auc(np.array([1.0, 1.0, 1.0, 1.0]), answerable) == 0.5
    assert train_reader.auc(np.array([0.0, 1.0, 2.0, 3.0]), answerable) == 0.0


def synthetic_cases(n: int = 400, seed: int = 3) -> train_reader.Cases:
    """Calibration cases where a missing name means unanswerable and the span score is noise."""
    rng = np.random.default_rng(seed)
    answerable = rng.random(n) < 0.6
    missing = np.where(answerable, 0, rng.integers(1, 3, n)).astype(float)
    features = np.column_stack(
        [rng.normal(size=n), missing, rng.random(n), rng.random(n), rng.choice([-1, 0, 1], n), rng.random(n)]
    )
    f1s = np.where(answerable, rng.uniform(0.6, 1.0, n), 0.0)
    sources = np.where(rng.random(n) < 0.5, "drcd", "qingdao")
    return train_reader.Cases(features[:, 0], f1s, answerable, features, sources)


def test_answer_check_learns_which_evidence_separates_the_unanswerable():
    cases = synthetic_cases()
    check = train_reader.fit_answer_check(cases)
    assert check.coef[1] < -1.0 and abs(check.coef[0]) < 0.5  # missing names weigh; the noise hardly does
    logits = np.array([check.logit(row) for row in cases.features])
    assert train_reader.auc(logits, cases.answerable) > 0.99
    assert train_reader.auc(cases.scores, cases.answerable) < 0.6


def test_answer_check_threshold_comes_from_out_of_fold_logits():
    cases = synthetic_cases()
    outside = train_reader.out_of_fold_logits(cases)
    inside = np.array([train_reader.fit_answer_check(cases).logit(row) for row in cases.features])
    assert outside.shape == inside.shape and not np.allclose(outside, inside)  # each fold's own fit
    assert np.array_equal(outside, train_reader.out_of_fold_logits(cases))  # folds are fixed by the seed
    record = train_reader.calibrate_answer_check(cases)
    assert record["features"] == list(CHECKED)  # five unless calibrated with --sentence-dense
    assert len(train_reader.fit_answer_check(cases, FEATURES).coef) == len(FEATURES) == 6
    best = train_reader.pick_threshold(outside, cases.f1s, cases.answerable)
    assert best is not None and record["threshold"] == best[1]
    assert record["out_of_fold"]["all"]["false_abstention"] <= train_reader.MAX_FALSE_ABSTENTION
    assert set(record["out_of_fold"]) == {"utility", "all", "drcd", "qingdao"}


def test_embedding_rows_train_only_often_used_tokens_and_assemble_adds_them(tmp_path, monkeypatch):
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    from rag.reader_export import assemble

    monkeypatch.setattr(train_reader, "log", lambda msg: None)
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    model = BertModel(config, add_pooling_layer=False).eval()
    ids = np.array([[0, 5, 5, 5, 7, 7, 1, 1]], np.int32)
    feats = {"ids": ids, "mask": np.array([[1, 1, 1, 1, 1, 1, 0, 0]])}  # token 1 only in padding
    rows = train_reader.EmbeddingRows(model, feats)
    assert rows.ids.tolist() == [5]  # 7 appears twice, below MIN_TOKEN_USES; padding does not count
    tokens = torch.from_numpy(ids.astype(np.int64))
    assert torch.allclose(rows.embed(model, tokens), model.embeddings(input_ids=tokens))  # untrained: the base
    with torch.no_grad():
        rows.values.copy_(torch.linspace(-1, 1, 8))  # not a constant: LayerNorm would remove that
    moved = (rows.embed(model, tokens) - model.embeddings(input_ids=tokens)).abs().amax(-1) > 1e-4
    assert moved[0].tolist() == [False, True, True, True, False, False, False, False]  # token 5's positions only

    base = tmp_path / "base"
    model.save_pretrained(base)  # BertModel keys, as in the converted e5-small
    state = {"layers": {}, "head": {"weight": torch.zeros(2, 8), "bias": torch.zeros(2)}, **rows.state()}
    delta = tmp_path / "delta.safetensors"
    save_file(train_reader._delta_tensors(state), str(delta))
    reader = assemble(base, delta)
    weights = reader.bert.embeddings.word_embeddings.weight
    expected = model.embeddings.word_embeddings.weight[5] + torch.linspace(-1, 1, 8)
    assert torch.allclose(weights[5], expected, atol=1e-3)  # shipped in fp16
    assert torch.equal(weights[7], model.embeddings.word_embeddings.weight[7])


def test_traditional_twins_keep_answer_offsets_and_leave_the_rest_alone(monkeypatch):
    from rag.offline_model import ensure_model
    from rag.reader import PairEncoder, Passage

    encoder = PairEncoder(ensure_model() / "tokenizer.json", 64)
    text = "青岛市统计局发布数据。2024年青岛市进出口总值9076.7亿元，增长4.6%。这是历史新高。"
    answer = (text.index("9076.7"), text.index("亿元") + 2)
    positive = train_reader.Example("q1", "drcd", "positive", "进出口总值是多少？", "青岛经济", text, (0, 0), answer)
    positive.window = encoder.window(positive.question, Passage(text, "青岛经济", answer), 0.5)
    negative = train_reader.Example("q2", "drcd", "retrieved", "谁发布了数据？", "青岛经济", text, (0, 20), None)
    monkeypatch.setattr(train_reader, "TRADITIONAL_SHARE", 1.0)
    twin, other = train_reader._traditional_twins([positive, negative], encoder)
    assert twin.traditional and twin.question == "進出口總值是多少？" and twin.title == "青島經濟"
    assert twin.text[slice(*twin.answer)] == "9076.7億元" and len(twin.text) == len(text)
    assert twin.window[0] <= twin.answer[0] and twin.answer[1] <= twin.window[1]
    assert other.traditional and other.answer is None and "統計局" in other.text
    monkeypatch.setattr(train_reader, "TRADITIONAL_SHARE", 0.0)
    assert train_reader._traditional_twins([positive], encoder) == [positive]
