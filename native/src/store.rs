//! The two places data lives: a directory on local disk and an S3 bucket.

pub mod local;
pub mod s3;
