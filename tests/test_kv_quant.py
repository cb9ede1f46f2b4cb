"""KV-cache quantisation (workbench.efficiency.kv_quant): the quantiser against a brute-force
nearest grid point, the cache inside transformers' QuantizedLayer against the float cache, and
the byte formula against the bytes a real cache holds."""
import pytest
import torch

from workbench import decoding
from workbench.efficiency import kv_cache_bytes
from workbench.efficiency import kv_quant as kq

PROMPTS = ["Story:", "Q: 38+17*3-29+6*4\n", 'JSON: {"name": "Ada"']


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("dim", [-1, -2])
def test_codes_are_the_nearest_grid_point(bits, dim):
    """x^ = m + s q with q the nearest of the 2^b grid points m + s k (brute force over k),
    |x - x^| <= s / 2, and each group's minimum and maximum land on the first and last code."""
    x = torch.randn(2, 3, 7, 5, generator=torch.Generator().manual_seed(bits)) * 3
    q = kq.quantize_minmax(x, bits, dim=dim)
    grid = q.offset.unsqueeze(-1) + q.step.unsqueeze(-1) * torch.arange(2 ** bits)
    nearest = (x.unsqueeze(-1) - grid).abs().argmin(-1)
    assert torch.equal(q.codes.long(), nearest)
    assert ((x - q.dequantize()).abs() <= q.step / 2 + 1e-6).all()
    assert (q.codes.amin(dim) == 0).all() and (q.codes.amax(dim) == 2 ** bits - 1).all()


def test_a_constant_group_is_exact_and_bad_input_is_named():
    x = torch.full((1, 1, 4, 3), 0.7)
    assert torch.equal(kq.quantize_minmax(x, 2, dim=-2).dequantize(), x)
    for bad in (0, 9, 2.5, True):
        with pytest.raises(ValueError, match="bits"):
            kq.quantize_minmax(x, bad)
    with pytest.raises(ValueError, match="floating"):
        kq.quantize_minmax(torch.ones(3, dtype=torch.long), 4)


def test_cache_arguments_are_checked(target):
    with pytest.raises(ValueError, match="keys"):
        kq.with_quantized_kv(target, 4, keys="row")
    with pytest.raises(ValueError, match="values"):
        kq.with_quantized_kv(target, 4, values="head")
    with pytest.raises(ValueError, match="residual"):
        kq.with_quantized_kv(target, 4, residual=0)
    with pytest.raises(ValueError, match="bits"):
        kq.with_quantized_kv(target, 12)


@pytest.mark.parametrize("model", ["target", "tiny_lm"])
def test_eight_bits_decode_like_the_float_cache(model, request):
    """8-bit keys and values (256 levels per group) leave greedy decoding unchanged, past the
    residual window, on TinyWorld's model and a random Llama; the quantized model shares the
    weights."""
    lm = request.getfixturevalue(model)
    q = kq.with_quantized_kv(lm, 8, residual=4)
    assert q.model is lm.model and q.name.endswith("-kv8")
    for prompt in PROMPTS:
        want = decoding.greedy(lm, prompt, max_new_tokens=40, eos=False).token_ids
        assert decoding.greedy(q, prompt, max_new_tokens=40, eos=False).token_ids == want


def test_fidelity_falls_with_the_bits(target):
    """Teacher-forced along the float model's greedy text: 8 bits agree everywhere; the KL
    divergence from the float cache grows as the bits fall (8 < 4 < 2)."""
    fid = {b: kq.decode_fidelity(target, kq.with_quantized_kv(target, b, residual=8), PROMPTS[1:],
                                 max_new_tokens=32) for b in (8, 4, 2)}
    assert fid[8]["agreement"] == 1.0 and fid[8]["positions"] == 2 * 32
    assert fid[8]["kl"] < fid[4]["kl"] < fid[2]["kl"]
    assert fid[8]["kl"] < 1e-3 and fid[2]["kl"] > 10 * fid[4]["kl"] > 0
    same = kq.decode_fidelity(target, target, PROMPTS[:1], max_new_tokens=10)
    assert same["agreement"] == 1.0 and same["kl"] == pytest.approx(0, abs=1e-9)


def test_a_precomputed_reference_gives_the_same_numbers(target):
    """`fidelity_reference` computed once, then reused, gives exactly what `decode_fidelity`
    computes from the model; prompts given beside a precomputed reference, or missing beside a
    model, are refused by name."""
    ref = kq.fidelity_reference(target, PROMPTS[1:], max_new_tokens=12)
    q = kq.with_quantized_kv(target, 3, residual=4)
    assert kq.decode_fidelity(ref, q) == kq.decode_fidelity(target, q, PROMPTS[1:],
                                                            max_new_tokens=12)
    assert ref.rows[0][2].shape[0] == 12 and ref.name == target.name
    with pytest.raises(ValueError, match="prompts"):
        kq.decode_fidelity(ref, q, PROMPTS[1:])
    with pytest.raises(ValueError, match="prompts"):
        kq.decode_fidelity(target, q)
    with pytest.raises(ValueError, match="max_new_tokens"):
        kq.fidelity_reference(target, PROMPTS[1:], max_new_tokens=0)


def test_byte_formula_matches_the_cache_it_describes(target):
    """After decoding, the packed codes, steps and offsets of every layer plus its
    full-precision residual window add up to `quantized_kv_bytes`."""
    bits, residual = 4, 8
    cfg = target.model.config
    cache = kq.quantized_kv_cache(cfg, bits, residual=residual)
    ids = target.encode(PROMPTS[1])
    logits, cache = target.forward(torch.tensor([ids]), cache=cache)
    for _ in range(30):
        tok = logits[0, -1].argmax().view(1, 1)
        logits, cache = target.forward(tok, cache=cache)
    layer = cache.layers[0]
    window = layer.keys.shape[-2] if layer.keys.dim() == 4 else 0
    tokens = layer.cumulative_length
    assert tokens == len(ids) + 30
    held = sum(lay._quantized_keys.packed_bytes() + lay._quantized_values.packed_bytes()
               + (lay.keys.numel() + lay.values.numel()) * 4 for lay in cache.layers)
    assert held == kq.quantized_kv_bytes(cfg, tokens, bits, residual=window)
    # the codes cover every token outside the window
    assert layer._quantized_keys.codes.shape[-2] == tokens - window
    # per token and head: 4-bit codes (d bytes for K and V) and a 2-byte step and offset for V,
    # against 8d bytes of float32: 1/8 + 1/(2d) of the float cache (plus the keys' per-channel
    # steps, negligible at 4096 tokens)
    d = kq.head_dim(cfg)
    ratio = kq.quantized_kv_bytes(cfg, 4096, 4) / kv_cache_bytes(cfg, 4096)
    assert ratio == pytest.approx(1 / 8 + 1 / (2 * d), rel=2e-3)
