//! Utilities the numerics stand on, with no knowledge of the model:
//! SIMD lanes and the instruction-set dispatch ([`lanes`], [`simd_dispatch`]),
//! deterministic parallel sums ([`parallel`]), the multi-dimensional FFT
//! ([`fft`]), the regular grid every grid of the crate is ([`grid`]), the checks of settings numbers that name the key in their errors
//! ([`checks`]), the members that divide an evaluation ([`team`]: a single
//! process, MPI ranks, or threads in tests), the vectors divided among
//! them ([`shard`]), the exchange of the values a member reads but others
//! own ([`ghosts`]), a mesh divided by slabs for its FFTs ([`slabs`]), and the process-level hooks: the allocator's arenas
//! ([`alloc`]), interrupts ([`interrupt`]) and the test-only fault
//! injection ([`fault`]).

pub mod alloc;
pub mod checks;
pub mod fault;
pub mod fft;
pub mod ghosts;
pub mod grid;
pub mod interrupt;
pub mod lanes;
pub mod math;
pub mod morton;
pub mod parallel;
pub mod shard;
pub mod simd_dispatch;
pub mod slabs;
pub mod team;
