//! Every CUDA kernel the backend loads by name exists in `kernels.cu`, and its `UNARY_OPS`
//! and `BINARY_OPS` lists are `UnaryOp`'s and `BinaryOp`'s: a kernel renamed or an op added on one side only fails here,
//! on any machine, instead of at run time on a GPU. With the `cuda` feature and an NVRTC
//! library on the loader path (`pip install nvidia-cuda-nvrtc-cu12`; `.ci/run` does), the
//! file is also compiled and every name checked in the PTX.

use mclrec_tensor::{BinaryOp, UnaryOp};

const KERNELS_CU: &str = include_str!("../src/cuda/kernels.cu");
const CUDA_SOURCES: [(&str, &str); 10] = [
    ("attention.rs", include_str!("../src/cuda/attention.rs")),
    ("contrastive.rs", include_str!("../src/cuda/contrastive.rs")),
    (
        "conv_max_pool.rs",
        include_str!("../src/cuda/conv_max_pool.rs"),
    ),
    ("elementwise.rs", include_str!("../src/cuda/elementwise.rs")),
    ("gru.rs", include_str!("../src/cuda/gru.rs")),
    ("indexing.rs", include_str!("../src/cuda/indexing.rs")),
    ("matmul.rs", include_str!("../src/cuda/matmul.rs")),
    ("mod.rs", include_str!("../src/cuda/mod.rs")),
    ("normalise.rs", include_str!("../src/cuda/normalise.rs")),
    ("reduce.rs", include_str!("../src/cuda/reduce.rs")),
];

/// The identifiers that follow each occurrence of `prefix` (up to a character that cannot
/// be in a name).
fn names_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// The names `kernels.cu` exports (without the `_f32` / `_f64` suffix): the INSTANTIATE
/// list's `void NAME_##S(` and one pair per `UNARY_OPS` entry.
fn exported() -> Vec<String> {
    let mut names: Vec<String> = names_after(KERNELS_CU, "__global__ void ")
        .into_iter()
        .filter_map(|n| n.strip_suffix("_"))
        .filter(|n| !n.contains("##"))
        .map(str::to_string)
        .collect();
    for op in op_list("UNARY_OPS") {
        names.push(format!("unary_{op}"));
        names.push(format!("unary_backward_{op}"));
    }
    for op in op_list("BINARY_OPS") {
        names.push(format!("binary_{op}"));
    }
    names
}

/// The op names of `kernels.cu`'s `list(X)` (`UNARY_OPS` or `BINARY_OPS`), in order.
fn op_list(list: &str) -> Vec<&'static str> {
    let start = KERNELS_CU
        .find(&format!("#define {list}(X)"))
        .unwrap_or_else(|| panic!("kernels.cu defines no {list}"));
    let body = &KERNELS_CU[start..];
    let end = body.find("\n\n").expect("the list ends with a blank line");
    names_after(&body[..end], "X(")
}

/// Every kernel name the Rust side loads: `func::<E>("..")` literals, the names handed to
/// the indexing launcher, each `UnaryOp`'s two kernels and each `BinaryOp`'s one.
fn loaded() -> Vec<(String, &'static str)> {
    let mut names = Vec::new();
    for (file, src) in CUDA_SOURCES {
        for n in names_after(src, "func::<E>(\"") {
            names.push((n.to_string(), file));
        }
    }
    for n in ["index_select", "index_add"] {
        assert!(
            CUDA_SOURCES
                .iter()
                .any(|(f, src)| *f == "indexing.rs" && src.contains(&format!("\"{n}\""))),
            "indexing.rs no longer loads {n}: update this test"
        );
        names.push((n.to_string(), "indexing.rs"));
    }
    for op in UnaryOp::<f32>::all(0.5) {
        names.push((op.kernel().to_string(), "unary_op.rs"));
        names.push((op.backward_kernel().to_string(), "unary_op.rs"));
    }
    for op in BinaryOp::ALL {
        names.push((op.kernel().to_string(), "binary_op.rs"));
    }
    names
}

#[test]
fn op_lists_are_the_rust_ops() {
    assert_eq!(op_list("UNARY_OPS"), UnaryOp::<f32>::NAMES);
    assert_eq!(op_list("BINARY_OPS"), BinaryOp::NAMES);
}

#[test]
fn every_loaded_kernel_is_exported() {
    let exported = exported();
    let loaded = loaded();
    assert!(loaded.len() > 50, "only {} names found", loaded.len());
    for (name, file) in &loaded {
        assert!(
            exported.contains(name),
            "cuda/{file} loads kernel `{name}`, which kernels.cu does not export"
        );
    }
}

/// Compiles `kernels.cu` with NVRTC (no GPU needed) and looks for every loaded name in the
/// PTX, for both element types.
#[cfg(feature = "cuda")]
#[test]
fn kernels_compile_with_nvrtc() {
    let Ok(ptx) = std::panic::catch_unwind(|| {
        let opts = cudarc::nvrtc::CompileOptions {
            options: vec!["--gpu-architecture=compute_80".into()],
            ..Default::default()
        };
        cudarc::nvrtc::compile_ptx_with_opts(mclrec_tensor::cuda::KERNELS, opts)
    }) else {
        // `.ci/run` installs the library and sets this: there, no library is a failure.
        assert!(
            std::env::var_os("MCLREC_REQUIRE_NVRTC").is_none(),
            "MCLREC_REQUIRE_NVRTC is set but no NVRTC library could be loaded"
        );
        eprintln!("SKIPPED kernels_compile_with_nvrtc: no NVRTC library could be loaded");
        return;
    };
    let ptx = ptx
        .unwrap_or_else(|e| panic!("NVRTC rejects kernels.cu: {e:?}"))
        .to_src();
    for (name, file) in loaded() {
        for s in ["f32", "f64"] {
            assert!(
                ptx.contains(&format!(".entry {name}_{s}(")),
                "{name}_{s} (loaded by cuda/{file}) is not in the compiled PTX"
            );
        }
    }
}
