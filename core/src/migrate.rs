//! TODO: migrate
