//! 2-d convolution on Burn's CPU backend (`flex`) as one matrix product per chunk of images, forward and
//! backward; a Burn backend extension, so the rest of the network and autodiff see an ordinary operation.
//!
//! Why: burn-flex 0.22.1 runs a convolution as one small matrix product per (image, tile of 512 outputs), after
//! converting the input to NHWC on one thread, and its gradients as a transposed convolution and a convolution
//! with batch and channels swapped. On the small feature maps of a 32-pixel ResNet (8 × 8 down to 1 × 1) each
//! product has 1 to 64 rows and the per-call cost dominates: the quickstart's convolutions ran at 0.15× of
//! PyTorch forward and 0.24× with their gradients (docs/performance.md, issue 14). Here the im2col matrix of a
//! chunk of whole images (about 1 MiB) feeds one product with the batch folded into its columns, and the two
//! gradients are the transposed products of the same matrices.
//!
//! [`conv2d`] takes this path for `f32` convolutions without groups on the `flex` device (with or without
//! autodiff); everything else, including every GPU device, goes to `burn::tensor::module::conv2d`. Results are
//! the same convolution, summed in another order (tested against a direct loop and against Burn), and the same
//! bits on every run and thread count (the chunks are fixed by the shapes, their weight gradients summed in
//! order; the GEMM kernels are chosen by the CPU's features, so another CPU may round differently).

mod kernel;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::ConvOptions;

use kernel::Geometry;

use crate::kernels::flex_io::{contiguous, floats, on_flex, tensor};

/// The convolution as a backend operation: implemented for `Flex` and for autodiff over it.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait GemmConv: Backend {
    /// `x: [N, C, H, W]` convolved with `weight: [O, C, kh, kw]`, without bias or groups.
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

/// The gradients of [`GemmConv::gemm_conv2d`] on a backend without autodiff.
pub(crate) trait GemmConvBackward: Backend {
    /// The gradients of the input and of the weight for the output gradient `grad`, each when asked for.
    fn gemm_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        want_x: bool,
        want_weight: bool,
    ) -> (Option<FloatTensor<Self>>, Option<FloatTensor<Self>>);
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Geometry {
    let dims = |t: &FlexTensor| -> [usize; 4] {
        let shape = t.layout().shape();
        [shape[0], shape[1], shape[2], shape[3]]
    };
    Geometry::new(
        dims(x),
        dims(weight),
        options.stride,
        options.padding,
        options.dilation,
    )
    .expect("checked by conv2d before the backend is called")
}

impl GemmConv for Flex {
    fn gemm_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        let g = geometry(&x, &weight, &options);
        let (x, weight) = (contiguous(&x), contiguous(&weight));
        let y = kernel::forward(&g, floats(&x), floats(&weight));
        tensor(y, [g.n, g.o, g.ho, g.wo])
    }
}

impl GemmConvBackward for Flex {
    fn gemm_conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        options: ConvOptions<2>,
        want_x: bool,
        want_weight: bool,
    ) -> (Option<FlexTensor>, Option<FlexTensor>) {
        let g = geometry(&x, &weight, &options);
        let (x, weight, grad) = (contiguous(&x), contiguous(&weight), contiguous(&grad));
        let (dx, dw) = kernel::backward(
            &g,
            floats(&x),
            floats(&weight),
            floats(&grad),
            want_x,
            want_weight,
        );
        (
            dx.map(|d| tensor(d, [g.n, g.c, g.h, g.w])),
            dw.map(|d| tensor(d, [g.o, g.c, g.kh, g.kw])),
        )
    }
}

#[derive(Debug)]
struct GemmConvGrad;

impl<B: Backend + GemmConvBackward> Backward<B, 2> for GemmConvGrad {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        let (dx, dw) = B::gemm_conv2d_backward(
            x,
            weight,
            grad,
            options,
            node_x.is_some(),
            node_weight.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<B>(node.id, dx);
        }
        if let (Some(node), Some(dw)) = (node_weight, dw) {
            grads.register::<B>(node.id, dw);
        }
    }
}

impl<B: Backend + GemmConv + GemmConvBackward, C: CheckpointStrategy> GemmConv for Autodiff<B, C> {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match GemmConvGrad
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y =
                    B::gemm_conv2d(x.into_primitive(), weight.into_primitive(), options.clone());
                prep.finish((x_state, weight_state, options), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::gemm_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }
}

/// Whether [`conv2d`] takes the GEMM path for these arguments.
pub(crate) fn takes_gemm_path(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    options.groups == 1
        && on_flex(x.device())
        && on_flex(weight.device())
        && x.device().is_autodiff() == weight.device().is_autodiff()
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && Geometry::output_size(
            x.dims(),
            weight.dims(),
            options.stride,
            options.padding,
            options.dilation,
        )
        .is_some()
}

/// `burn::tensor::module::conv2d(x, weight, bias, options)`, through the GEMM path on the `flex` device when it
/// applies (`f32`, no groups; see the module's documentation). The networks of this crate call it for every
/// convolution; use it in your own modules the same way.
///
/// ```
/// use burn::prelude::*;
/// use burn::tensor::ops::ConvOptions;
///
/// let device = Device::flex().autodiff();
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device).require_grad();
/// let weight = Tensor::<4>::ones([4, 3, 3, 3], &device).require_grad();
/// let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
/// let y = cadet_model::kernels::conv::conv2d(x.clone(), weight.clone(), None, options);
/// assert_eq!(y.dims(), [2, 4, 8, 8]);
/// // The centre sees all 27 inputs, a corner 12.
/// let y = y.into_data().to_vec::<f32>().unwrap();
/// assert_eq!((y[3 * 8 + 3], y[0]), (27.0, 12.0));
/// ```
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let bias_fits = bias.as_ref().is_none_or(|b| b.dims() == [weight.dims()[0]]);
    if !bias_fits || !takes_gemm_path(&x, &weight, &options) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let y = <Dispatch as GemmConv>::gemm_conv2d(x.into_dispatch(), weight.into_dispatch(), options);
    let y = Tensor::<4>::from_dispatch(y);
    match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.reshape([1, channels, 1, 1])
        }
        None => y,
    }
}
