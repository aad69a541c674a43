//! kompass-wasm: a thin wasm-bindgen layer over kompass-core for the browser page and the
//! edge presigner. Each module binds one core concept; none holds logic the core lacks.
//! JS names are camelCase; JSON shapes are typed in the generated `.d.ts`.

mod error;
mod key;

pub use key::object_key;
