"""Post-training fake quantization (symmetric int8 / int4, per tensor or per channel)."""

from tradeoffs.quantization.fake_quant import GRANULARITIES
from tradeoffs.quantization.fake_quant import Quantized
from tradeoffs.quantization.fake_quant import dense_bytes
from tradeoffs.quantization.fake_quant import quantize
from tradeoffs.quantization.fake_quant import quantize_array
from tradeoffs.quantization.fake_quant import quantized_bytes
from tradeoffs.quantization.population import check_quantization
from tradeoffs.quantization.population import quantize_population
from tradeoffs.quantization.population import quantized_bits_per_leaf
