//! Contiguous permutation of 4-D tensors with its own backward (attention's head split and
//! merge), for the Flex backend: burn-flex would materialize these element by element through
//! its generic strided iterator. Other backends use burn's `permute`.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};

use super::kernels::{Ad, cast, device, float, fused, host};

// burn-flex would otherwise do element by element through its generic strided iterator.

fn permute_host(x: &[f32], shape: [usize; 4], axes: [usize; 4]) -> Vec<f32> {
    let mut strides = [0usize; 4];
    let mut acc = 1;
    for i in (0..4).rev() {
        strides[i] = acc;
        acc *= shape[i];
    }
    let out_shape = axes.map(|a| shape[a]);
    let st = axes.map(|a| strides[a]);
    let mut out = Vec::with_capacity(x.len());
    for i0 in 0..out_shape[0] {
        for i1 in 0..out_shape[1] {
            for i2 in 0..out_shape[2] {
                let base = i0 * st[0] + i1 * st[1] + i2 * st[2];
                if st[3] == 1 {
                    out.extend_from_slice(&x[base..base + out_shape[3]]);
                } else {
                    out.extend((0..out_shape[3]).map(|i3| x[base + i3 * st[3]]));
                }
            }
        }
    }
    out
}

fn inverse(axes: [usize; 4]) -> [usize; 4] {
    let mut inv = [0; 4];
    for (i, &a) in axes.iter().enumerate() {
        inv[a] = i;
    }
    inv
}

#[derive(Debug)]
struct Permute;

impl Backward<Flex, 1> for Permute {
    type State = ([usize; 4], [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (out_shape, axes) = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |g| {
            let inv = inverse(axes);
            device(permute_host(&host(&g), out_shape, inv), inv.map(|a| out_shape[a]).to_vec())
        });
    }
}

/// `x.permute(axes)`, materialized contiguously.
pub fn permute<B: Backend>(x: Tensor<B, 4>, axes: [usize; 4]) -> Tensor<B, 4> {
    let shape = x.dims();
    let out_shape = axes.map(|a| shape[a]);
    let x = match fused::<_, Tensor<Ad, 4>>(x) {
        Ok(x) => {
            let x = float(x);
            let y = device(permute_host(&host(&x.primitive), shape, axes), out_shape.to_vec());
            let out = match Permute.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish((out_shape, axes), y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            return cast(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(out))).expect("B is Autodiff<Flex>");
        }
        Err(x) => x,
    };
    let x = match fused::<_, Tensor<Flex, 4>>(x) {
        Ok(x) => {
            let p = float(x);
            let y = device(permute_host(&host(&p), shape, axes), out_shape.to_vec());
            return cast(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y))).expect("B is Flex");
        }
        Err(x) => x,
    };
    x.permute(axes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn permute_matches_burn() {
        let d = burn::backend::flex::FlexDevice;
        let close = |a: Tensor<Ad, 2>, b: Tensor<Ad, 2>| {
            let (a, b) = (a.into_data().into_vec::<f32>().unwrap(), b.into_data().into_vec::<f32>().unwrap());
            assert_eq!(a, b);
        };
        let p = Tensor::<Flex, 4>::random([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), &d);
        let wp = Tensor::<Flex, 4>::random([2, 4, 5, 3], Distribution::Normal(0.0, 1.0), &d);
        let run = |fused: bool| {
            let x = Tensor::<Ad, 4>::from_inner(p.clone()).require_grad();
            let y = if fused { permute(x.clone(), [0, 2, 3, 1]) } else { x.clone().permute([0, 2, 3, 1]) };
            let g = (y.clone() * Tensor::from_inner(wp.clone())).sum().backward();
            (y.reshape([40, 3]), Tensor::<Ad, 4>::from_inner(x.grad(&g).unwrap()).reshape([24, 5]))
        };
        let ((y1, g1), (y2, g2)) = (run(true), run(false));
        close(y1, y2);
        close(g1, g2);
    }
}
