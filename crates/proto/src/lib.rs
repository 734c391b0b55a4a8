//! Flotilla's gRPC protocols: the worker and shipper gateways and the admin API served by
//! the coordinator, and the trace sink served by the log-shipper. Generated from
//! `proto/flotilla.proto` at build time.

pub mod v1 {
    tonic::include_proto!("flotilla.v1");
}

pub mod transport;

pub use v1::*;
