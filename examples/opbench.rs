//! Micro-benchmark of single burn ops under autodiff on the CPU backend (profiling aid).
use std::time::Instant;

use burn::backend::flex::FlexDevice;
use burn::tensor::activation::{silu, softmax, sigmoid};
use burn::tensor::{Distribution, Tensor};
use lrx::train::CpuBackend as B;

fn time<F: FnMut()>(name: &str, mut f: F) {
    for _ in 0..3 {
        f();
    }
    let n = 50;
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    println!("{name:40} {:8.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}

fn main() {
    let d = FlexDevice;
    let x4 = Tensor::<B, 4>::random([8, 4, 64, 64], Distribution::Normal(0.0, 1.0), &d);
    let x2 = Tensor::<B, 2>::random([1024, 128], Distribution::Normal(0.0, 1.0), &d);
    time("exp fwd [8,4,64,64]", || {
        let _ = x4.clone().exp();
    });
    time("softmax fwd [8,4,64,64]", || {
        let _ = softmax(x4.clone(), 3);
    });
    time("softmax fwd+bwd [8,4,64,64]", || {
        let x = x4.clone().require_grad();
        let _ = softmax(x, 3).sum().backward();
    });
    time("fused causal_softmax fwd+bwd [8,4,64,64]", || {
        let x = x4.clone().require_grad();
        let _ = lrx::train::kernels::causal_softmax(x).sum().backward();
    });
    time("fused silu fwd+bwd [1024,128]", || {
        let x = x2.clone().require_grad();
        let _ = lrx::train::kernels::silu(x).sum().backward();
    });
    let inner = x2.clone().inner();
    time("into_data [1024,128] (inner)", || {
        let _ = inner.clone().into_data();
    });
    let data = inner.clone().into_data();
    time("into_vec from TensorData", || {
        let _ = data.clone().into_vec::<f32>().unwrap();
    });
    let v: Vec<f32> = data.clone().into_vec().unwrap();
    time("from_data [1024,128]", || {
        let _ = Tensor::<burn::backend::Flex, 2>::from_data(burn::tensor::TensorData::new(v.clone(), [1024, 128]), &d);
    });
    time("fast exp over 131k (host)", || {
        let y: Vec<f32> = v.iter().map(|&x| lrx::train::kernels::exp(x)).collect();
        std::hint::black_box(y);
    });
    time("sum().backward() only [1024,128]", || {
        let x = x2.clone().require_grad();
        let _ = x.sum().backward();
    });
    time("max_dim [8,4,64,64]", || {
        let _ = x4.clone().max_dim(3);
    });
    time("sum_dim [8,4,64,64]", || {
        let _ = x4.clone().sum_dim(3);
    });
    time("sigmoid fwd [1024,128]", || {
        let _ = sigmoid(x2.clone());
    });
    time("silu fwd+bwd [1024,128]", || {
        let x = x2.clone().require_grad();
        let _ = silu(x).sum().backward();
    });
    time("mul same-shape fwd [1024,128]", || {
        let _ = x2.clone() * x2.clone();
    });
    time("add_scalar [1024,128]", || {
        let _ = x2.clone().add_scalar(1.0);
    });
    let w = Tensor::<B, 2>::random([128, 64], Distribution::Normal(0.0, 1.0), &d);
    time("matmul [1024,128]x[128,64] fwd", || {
        let _ = x2.clone().matmul(w.clone());
    });
    time("matmul fwd+bwd", || {
        let x = x2.clone().require_grad();
        let w = w.clone().require_grad();
        let _ = x.matmul(w).sum().backward();
    });
    let q = Tensor::<B, 4>::random([8, 4, 64, 16], Distribution::Normal(0.0, 1.0), &d);
    time("q@kT [8,4,64,16] fwd", || {
        let _ = q.clone().matmul(q.clone().swap_dims(2, 3));
    });
    time("swap+reshape copy [8,4,64,16]", || {
        let _ = q.clone().swap_dims(1, 2).reshape([512, 64]);
    });
    time("empty autodiff sum().backward()", || {
        let x = x2.clone().require_grad();
        let _ = x.sum().backward();
    });
}
