//! The crate's `unsafe` code for HiGHS (the only other is `infer`'s checked sgemm call): what
//! the `highs` crate does not wrap, through `highs-sys` (writing the model to a file, and the
//! callback that collects improving MIP solutions).

use highs::Model;

/// Writes `model` to `path` (its format from the extension: `.lp`, `.mps`).
pub(super) fn write_model(model: &mut Model, path: &std::ffi::CStr) {
    // SAFETY: `model` owns a live Highs instance and `path` is a NUL-terminated string
    // that outlives the call.
    unsafe { highs_sys::Highs_writeModel(model.as_mut_ptr(), path.as_ptr()) };
}

/// Has HiGHS push a copy of every improving MIP solution of `model`'s next solve into `into`.
/// `into` must outlive that solve, and nothing else may touch it until the solve is over.
pub(super) fn collect_improving(model: &mut Model, into: &mut Vec<Vec<f64>>) {
    // SAFETY: `model` owns a live Highs instance; the callback only reads HiGHS's solution
    // array of the size HiGHS states and pushes a copy into `into`, which the caller keeps
    // alive across the solve (HiGHS calls back only from inside `try_solve`).
    unsafe {
        let ptr = model.as_mut_ptr();
        highs_sys::Highs_setCallback(
            ptr,
            Some(improving_callback),
            into as *mut Vec<Vec<f64>> as *mut std::ffi::c_void,
        );
        highs_sys::Highs_startCallback(ptr, highs_sys::kHighsCallbackMipImprovingSolution);
    }
}

/// HiGHS callback: keeps a copy of each improving MIP solution (full column vectors).
unsafe extern "C" fn improving_callback(
    kind: std::ffi::c_int,
    _message: *const std::ffi::c_char,
    out: *const highs_sys::HighsCallbackDataOut,
    _input: *mut highs_sys::HighsCallbackDataIn,
    data: *mut std::ffi::c_void,
) {
    if kind != highs_sys::kHighsCallbackMipImprovingSolution || out.is_null() || data.is_null() {
        return;
    }
    let out = &*out;
    if out.mip_solution.is_null() || out.mip_solution_size <= 0 {
        return;
    }
    let sols = &mut *(data as *mut Vec<Vec<f64>>);
    sols.push(
        std::slice::from_raw_parts(out.mip_solution, out.mip_solution_size as usize).to_vec(),
    );
}
