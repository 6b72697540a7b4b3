//! Integration tests: the real poolside binary against a real AWS emulator
//! (moto server or LocalStack on POOLSIDE_TEST_ENDPOINT, default :4566).
//! One test binary, so the AWS SDK is linked once.

mod api;
mod bad_config;
mod cli;
mod customer_vpc;
mod data_tier;
mod deploy;
mod destroy;
mod discovery;
mod domain;
mod drift;
mod fleet;
mod graph;
mod iam_policy;
mod lock;
mod onboarding;
mod promote;
mod real_aws;
mod service_tier;
mod support;
mod token;
mod upgrade;
