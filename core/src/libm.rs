//! The C library's functions CPython's `math` module calls, so results match bit for bit.
//! (`f64::ln` and `f64::exp` lower to the same `log`/`exp` symbols; `erfc` has no std wrapper.)

extern "C" {
    #[link_name = "erfc"]
    fn c_erfc(x: f64) -> f64;
}

pub fn erfc(x: f64) -> f64 {
    // SAFETY: a pure libm function of one double
    unsafe { c_erfc(x) }
}
