//! Mixed precision (`precision = bf16`): a matmul's operands are rounded to bf16 and its product
//! comes back as f32, as under PyTorch's bf16 autocast; the weights the optimizer updates, its
//! state, norms, softmax, the router's logits and the loss stay f32.
//!
//! burn's casts are differentiable (a cast's gradient is cast back), so the backward pass's
//! matmuls take bf16 operands too and every parameter still gets an f32 gradient. Accelerators
//! run bf16 matmuls natively; burn-flex (the CPU) runs them as f32 GEMMs on bf16-rounded values
//! with the product rounded to bf16, the same rounding without the speed, deterministically.

use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};

use crate::spec::Precision;

/// `a · b` in the run's precision.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>, precision: Precision) -> Tensor<B, D> {
    match precision {
        Precision::F32 => a.matmul(b),
        Precision::Bf16 => a.cast(FloatDType::BF16).matmul(b.cast(FloatDType::BF16)).cast(FloatDType::F32),
    }
}
