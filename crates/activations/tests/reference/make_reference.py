#!/usr/bin/env python3
"""Reference values of part 1's scalar functions and of the losses built on them, computed with
mpmath at 2100 significant digits, for crates/activations/tests/precision.rs and
crates/losses/tests/precision.rs.

Regenerate (outside the workspace; mpmath from PyPI):
    python3 -m venv ~/.venv-peers && ~/.venv-peers/bin/pip install mpmath
    ~/.venv-peers/bin/python crates/activations/tests/reference/make_reference.py \
        > crates/activations/tests/reference/values.tsv

Each line: name <TAB> x <TAB> value, with 25 significant digits (more than the 17 that fix an
f64); parsing rounds to the nearest f64. Values below 1e-300 in magnitude are tested with an
absolute tolerance of 1e-300 (they underflow or are subnormal in f64).
"""
from mpmath import mp, mpf, exp, log, tanh, nstr

# 2100 digits: the direct formulas cancel (1 − tanh²(1000) ≈ 10⁻⁸⁶⁹), so the working precision
# must exceed every cancellation here for the printed 25 digits to be right
mp.dps = 2100

XS = ["1e-8", "-1e-8", "0.5", "-0.5", "2.5", "-2.5", "20", "-20", "30", "-30", "50", "-50",
      "1000", "-1000"]


def sigmoid(x):
    return 1 / (1 + exp(-x))


def softplus(x):
    return log(1 + exp(x))


def rows():
    for text in XS:
        x = mpf(text)
        s, sm = sigmoid(x), sigmoid(-x)
        yield "sigmoid", text, s
        yield "sigmoid_prime", text, s * sm
        yield "tanh", text, tanh(x)
        yield "tanh_prime", text, 1 - tanh(x) ** 2
        yield "softplus", text, softplus(x)
        yield "softplus_prime", text, s
        yield "log_sigmoid", text, log(s)
        # the pair [x, −x]: log-softmax, softmax and its Jacobian's entries
        lse = log(exp(x) + exp(-x))
        yield "log_softmax_pair_0", text, x - lse
        yield "log_softmax_pair_1", text, -x - lse
        p0, p1 = exp(x - lse), exp(-x - lse)
        yield "softmax_pair_0", text, p0
        yield "softmax_jacobian_pair_00", text, p0 * (1 - p0)
        yield "softmax_jacobian_pair_01", text, -p0 * p1
        # binary losses on the logit z = x: BCE with logits and the MSE of σ, y ∈ {0, 1}
        for y in (0, 1):
            yield f"bce_logits_y{y}", text, -(y * log(s) + (1 - y) * log(1 - s))
            yield f"bce_logits_grad_y{y}", text, s - y
            yield f"sigmoid_mse_y{y}", text, (s - y) ** 2
            yield f"sigmoid_mse_grad_y{y}", text, 2 * (s - y) * s * (1 - s)
        # cross-entropy of the pair [x, −x] with label 0: value and ∂L/∂oᵃ₀ = S₀ − 1
        yield "cross_entropy_pair_y0", text, lse - x
        yield "cross_entropy_pair_grad0_y0", text, p0 - 1


if __name__ == "__main__":
    print("# name\tx\tvalue  (made by make_reference.py with mpmath, 2100 digits)")
    for name, text, value in rows():
        print(f"{name}\t{text}\t{nstr(value, 25, min_fixed=0, max_fixed=0)}")
