"""The operations a worker will run: an explicit allowlist, and nothing else.

An operation travels by name (``"Tensor.add"``, ``"torch.cat"``, ``"F.linear"``);
a worker looks the name up here and refuses any name it does not find. That is
fedlab's security boundary: a peer can make a worker compute, never run code.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from fedlab.exceptions import OperationNotAllowedError

_ARITH = """add sub mul div true_divide floor_divide remainder fmod pow neg abs exp exp2 expm1 log
log2 log10 log1p sqrt rsqrt sin cos tan tanh sigmoid relu clamp clip sign round floor ceil trunc
reciprocal square lerp addcmul addcdiv atan2 maximum minimum erf logit hypot sinh cosh asin acos
atan frac xlogy""".split()
_INPLACE = [n + "_" for n in _ARITH if n not in ("maximum", "minimum", "hypot")]
_METHODS = (
    _ARITH
    + _INPLACE
    + """__add__ __radd__ __iadd__ __sub__ __rsub__ __isub__ __mul__ __rmul__ __imul__
__truediv__ __rtruediv__ __itruediv__ __div__ __rdiv__ __idiv__ __floordiv__ __rfloordiv__
__ifloordiv__ __mod__ __rmod__ __pow__ __rpow__ __ipow__ __matmul__ __rmatmul__ __neg__ __abs__
__pos__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __and__ __or__ __xor__ __invert__ __rand__
__ror__ __rxor__ __iand__ __ior__ __ixor__ __lshift__ __rshift__ __getitem__ __setitem__
sum mean max min argmax argmin amax amin prod std var norm cumsum cumprod logsumexp softmax
log_softmax all any median mode topk sort argsort count_nonzero
view view_as reshape reshape_as flatten unflatten squeeze unsqueeze squeeze_ unsqueeze_ t t_
transpose transpose_ permute expand expand_as repeat repeat_interleave contiguous clone detach
detach_ split chunk unbind narrow select index_select gather scatter scatter_ scatter_add
scatter_add_ masked_fill masked_fill_ masked_select where flip roll tril triu diag diagonal
index_add index_add_ index_fill index_fill_ index_copy index_copy_ take nonzero unfold
mm matmul bmm mv dot outer addmm addmm_ addmv baddbmm inverse det
float double half bfloat16 long int short bool byte char to type_as
eq ne lt le gt ge eq_ ne_ lt_ le_ gt_ ge_ isnan isinf isfinite logical_not logical_and
logical_or logical_xor bitwise_not bitwise_and bitwise_or bitwise_xor
backward requires_grad_ retain_grad zero_ fill_ copy_ normal_ uniform_ bernoulli bernoulli_
random_ exponential_ new_zeros new_ones new_full new_empty new_tensor sign_ abs_ relu_ sigmoid_
tanh_ clamp_min clamp_max clamp_min_ clamp_max_ sqrt_ neg_ square_ exp_ log_ pow_ softmax
""".split()
)
_TORCH = """add sub mul div true_divide pow neg abs exp log log1p sqrt rsqrt sin cos tanh sigmoid
relu clamp clip sign round floor ceil reciprocal square lerp addcmul addcdiv maximum minimum
sum mean max min argmax argmin amax amin prod std var norm cumsum logsumexp softmax log_softmax
all any median topk sort argsort count_nonzero
cat concat concatenate stack hstack vstack split chunk unbind narrow select index_select gather
scatter masked_fill masked_select where flip roll tril triu diag flatten squeeze unsqueeze t
transpose permute reshape
mm matmul bmm mv dot outer addmm einsum cdist inverse det
eq ne lt le gt ge isnan isinf isfinite logical_not logical_and logical_or
zeros_like ones_like full_like empty_like rand_like randn_like clone detach dropout
""".split()
_FUNCTIONAL = """linear bilinear relu relu6 leaky_relu elu selu gelu silu mish softplus sigmoid tanh
hardtanh softmax log_softmax softmin dropout dropout2d conv1d conv2d conv3d conv_transpose2d
max_pool1d max_pool2d avg_pool1d avg_pool2d adaptive_avg_pool1d adaptive_avg_pool2d
adaptive_max_pool2d batch_norm layer_norm group_norm instance_norm embedding pad one_hot
normalize mse_loss l1_loss smooth_l1_loss huber_loss cross_entropy nll_loss binary_cross_entropy
binary_cross_entropy_with_logits kl_div cosine_similarity pairwise_distance""".split()


def _set_grad(t: torch.Tensor, value: torch.Tensor | None) -> None:
    t.grad = value


def _set_data(t: torch.Tensor, value: torch.Tensor) -> None:
    t.data = value


def _set_requires_grad(t: torch.Tensor, value: bool) -> None:
    t.requires_grad = value


def _build() -> dict[str, Callable]:
    ops: dict[str, Callable] = {}
    for name in _METHODS:
        if hasattr(torch.Tensor, name):
            ops[f"Tensor.{name}"] = getattr(torch.Tensor, name)
    for name in _TORCH:
        if hasattr(torch, name):
            ops[f"torch.{name}"] = getattr(torch, name)
    for name in _FUNCTIONAL:
        if hasattr(F, name):
            ops[f"F.{name}"] = getattr(F, name)
    # Attribute access travels as operations too (``w.grad``, ``w.data``, ``w.T``).
    for attr in ("grad", "data", "T", "mT", "H", "real", "imag"):
        ops[f"Tensor.{attr}.__get__"] = getattr(torch.Tensor, attr).__get__
    ops["Tensor.grad.__set__"] = _set_grad
    ops["Tensor.data.__set__"] = _set_data
    ops["Tensor.requires_grad.__set__"] = _set_requires_grad
    return ops


OPS: dict[str, Callable] = _build()

# Reverse lookup, from what ``__torch_function__`` receives to the name that travels.
# Property getters and setters arrive as fresh method-wrappers; they are named separately.
NAMES: dict[object, str] = {}
for _name, _fn in OPS.items():
    if not _name.endswith(("__get__", "__set__")):
        NAMES.setdefault(_fn, _name)


def name_of(func: Callable) -> str:
    """The travelling name of a torch callable (allowed or not), for messages and errors."""
    name = NAMES.get(func)
    if name is not None:
        return name
    if type(func).__name__ == "method-wrapper":  # a property's __get__ / __set__
        return f"Tensor.{func.__self__.__name__}.{func.__name__}"
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch.nn.functional"):
        return f"F.{qual}"
    if qual.startswith(("TensorBase.", "Tensor.")):
        return "Tensor." + qual.split(".", 1)[1]
    return f"torch.{qual.rsplit('.', 1)[-1]}" if "VariableFunctions" in qual else qual


def lookup(name: str) -> Callable:
    """The callable for an allowed operation name; anything else is refused."""
    fn = OPS.get(name) if isinstance(name, str) else None
    if fn is None:
        raise OperationNotAllowedError(
            f"the operation {name!r} is not on fedlab's allowlist, so no worker will run it. "
            "Workers only run tensor arithmetic, shape, reduction, autograd and layer "
            "operations; to use something else, .get() the tensor and run it locally."
        )
    return fn


def short(name: str) -> str:
    """A student-friendly name: ``Tensor.__add__`` -> ``__add__``, ``F.linear`` -> ``F.linear``."""
    return name.removeprefix("Tensor.").removeprefix("torch.")
