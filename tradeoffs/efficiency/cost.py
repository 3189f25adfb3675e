"""FLOPs, bytes and memory from XLA's analysis of the compiled program.

Convention (XLA's HloCostAnalysis, which `compiled.cost_analysis()` reports): a
multiply-add counts as 2 FLOPs, so a dense layer `[B, in] @ [in, out]` costs
`2 * B * in * out`; a convolution costs 2 FLOPs per multiply-add over the taps that
touch real (non-padding) input, so a SAME-padded convolution costs a little less than
the naive `2 * out_positions * kh * kw * cin * cout`. Elementwise ops add one FLOP per
element; transcendentals (tanh, exp) are counted separately by XLA and not in `flops`.

Sparse FLOPs are theoretical: every matmul or convolution whose weight operand is a
parameter leaf is scaled by that leaf's density. Dense hardware does the full count;
the report shows both so that "saved on paper" is never mistaken for "saved in time".
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.extend as jex

from tradeoffs.efficiency import counting
from tradeoffs.sparsity.masks import path_name

# Ops whose cost scales with the density of a weight operand.
_WEIGHT_OPS = ("dot_general", "conv_general_dilated")
# Ops that only change shape, layout or dtype: a weight passed through them is the same
# weight (same zeros), so density carries through.
_PASS_THROUGH = ("convert_element_type", "reshape", "transpose", "squeeze", "expand_dims",
                 "copy", "copy_p", "broadcast_in_dim", "rev")


def _first_value(analysis: Any) -> dict[str, float]:
  # Older jaxlibs return a list with one dict per program; 0.10 returns the dict.
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return dict(analysis or {})


def compiled_cost(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
  """Compiles `fn(*args)` and returns XLA's cost and memory analysis.

  Returns:
    flops, transcendentals, bytes (bytes accessed), and memory fields:
    argument_bytes, output_bytes, temp_bytes, alias_bytes, peak_bytes. `peak_bytes` is
    XLA's buffer-assignment peak (`peak_memory_in_bytes`) where this jaxlib reports it,
    otherwise the upper bound argument + output + temp - alias (also given as
    `memory_upper_bound_bytes`).

  >>> import jax.numpy as jnp
  >>> cost = compiled_cost(lambda w, x: x @ w, jnp.ones((3, 2)), jnp.ones((4, 3)))
  >>> cost["flops"]  # 2 * batch 4 * in 3 * out 2
  48.0
  >>> cost["argument_bytes"]  # (6 + 12) float32 inputs
  72
  """
  compiled = jax.jit(fn).lower(*args).compile()
  cost = _first_value(compiled.cost_analysis())
  out = {
      "flops": float(cost.get("flops", 0.0)),
      "transcendentals": float(cost.get("transcendentals", 0.0)),
      "bytes": float(cost.get("bytes accessed", 0.0)),
  }
  memory = compiled.memory_analysis()
  if memory is not None:
    argument = int(memory.argument_size_in_bytes)
    output = int(memory.output_size_in_bytes)
    temp = int(memory.temp_size_in_bytes)
    alias = int(memory.alias_size_in_bytes)
    upper = argument + output + temp - alias
    peak = int(getattr(memory, "peak_memory_in_bytes", 0) or 0)
    out.update(argument_bytes=argument, output_bytes=output, temp_bytes=temp,
               alias_bytes=alias, memory_upper_bound_bytes=upper,
               peak_bytes=peak if peak > 0 else upper)
  return out


def _op_flops(eqn: Any) -> float:
  """XLA's FLOP count of one jaxpr equation on its own (same convention as the whole)."""
  avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in eqn.invars]
  bind = lambda *xs: eqn.primitive.bind(*xs, **eqn.params)
  cost = _first_value(jax.jit(bind).lower(*avals).cost_analysis())
  return float(cost.get("flops", 0.0))


def weight_op_flops(apply_fn: Callable[[Any, Any], Any], params: Any,
                    example_input: Any) -> list[dict[str, Any]]:
  """Matmuls and convolutions of `apply_fn(params, x)` whose operand is a parameter leaf.

  Each entry: the op, the parameter path, its density and the op's dense FLOPs. Weights
  are followed through shape/dtype-only ops (reshape, transpose, casts) and into nested
  jit/call sub-programs; a weight computed from arithmetic (e.g. `w * mask` inside
  `apply_fn`) is not followed, so pass already-masked parameters.

  >>> import jax.numpy as jnp
  >>> params = {"w": jnp.array([[1.0, 0.0], [0.0, 0.0], [2.0, 3.0]])}
  >>> [op] = weight_op_flops(lambda p, x: x @ p["w"], params, jnp.ones((4, 3)))
  >>> op["op"], op["param"], op["density"], op["flops"]
  ('dot_general', 'w', 0.5, 48.0)
  """
  with_paths = jax.tree_util.tree_flatten_with_path(params)[0]
  closed = jax.make_jaxpr(apply_fn)(params, example_input)
  num_param_vars = len(jax.tree.leaves(params))
  origin = {}
  for var, (path, leaf) in zip(closed.jaxpr.invars[:num_param_vars], with_paths):
    origin[var] = (path_name(path), counting.leaf_density(leaf))
  found = []
  _walk(closed.jaxpr, origin, found)
  return found


def _walk(jaxpr: Any, origin: dict[Any, tuple[str, float]], found: list[dict[str, Any]]):
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    sources = [origin.get(v) if not isinstance(v, jex.core.Literal) else None
               for v in eqn.invars]
    if name in _WEIGHT_OPS:
      weights = [s for s in sources if s is not None]
      if weights:
        path, density = min(weights, key=lambda s: s[1])
        found.append({"op": name, "param": path, "density": density,
                      "flops": _op_flops(eqn)})
      continue
    if name in _PASS_THROUGH and sources and sources[0] is not None:
      origin[eqn.outvars[0]] = sources[0]
      continue
    for sub in jex.core.jaxprs_in_params(eqn.params):
      # Calls (pjit, closed_call, remat, custom_jvp) pass their operands one to one; for
      # control flow whose operands do not line up, weights inside are not followed.
      inner = {}
      if len(sub.invars) == len(eqn.invars):
        inner = {iv: s for iv, s in zip(sub.invars, sources) if s is not None}
      _walk(sub, inner, found)


def sparse_flops(apply_fn: Callable[[Any, Any], Any], params: Any, example_input: Any,
                 dense_flops: float | None = None) -> dict[str, Any]:
  """Theoretical FLOPs if zero weights were skipped, next to the dense count.

  sparse = dense - sum over weight ops of op_flops * (1 - density of its weight).
  Everything that is not a weighted matmul/convolution (activations, norms) stays dense.

  >>> import jax.numpy as jnp
  >>> params = {"w": jnp.array([[1.0, 0.0], [0.0, 0.0], [2.0, 3.0]])}  # density 0.5
  >>> out = sparse_flops(lambda p, x: x @ p["w"], params, jnp.ones((4, 3)))
  >>> out["dense_flops"], out["sparse_flops"]
  (48.0, 24.0)
  """
  if dense_flops is None:
    dense_flops = compiled_cost(apply_fn, params, example_input)["flops"]
  ops = weight_op_flops(apply_fn, params, example_input)
  saved = sum(op["flops"] * (1.0 - op["density"]) for op in ops)
  weighted = sum(op["flops"] for op in ops)
  return {
      "sparse_flops": float(max(dense_flops - saved, 0.0)),
      "dense_flops": float(dense_flops),
      "weight_op_flops": float(weighted),
      "note": "theoretical: assumes zero weights are skipped; dense hardware runs "
              "the dense count",
  }
