//! CPU kernels for Burn's `flex` backend, with no model code: convolution ([`conv`]) and batch norm
//! (`batch_norm`, crate-private) as Burn *backend extensions* (`#[backend_extension(Flex, Autodiff)]`), each with
//! its hand-written backward pass, reached through Burn's dispatch so that networks, optimizers and autodiff see
//! ordinary operations. They are written against burn-flex's public `FlexTensor` and plain slices
//! (`flex_io`), so they could move upstream as they are; other devices (CUDA) and other cases keep Burn's own
//! operations. Why and how fast: docs/performance.md.

pub(crate) mod batch_norm;
pub mod conv;
pub(crate) mod flex_io;
