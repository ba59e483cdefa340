//! Hand-written Rust baselines for the benchmark kernels: one representative
//! kernel of each `kernels/*.kern` file, written as idiomatic Rust over slices
//! with row-major index arithmetic.
//!
//! Each function follows its `.kern` source statement by statement, with the
//! same algorithm and the same order of floating-point operations (Rust never
//! reassociates or contracts float arithmetic), and calls the same math
//! routines the kernels get (`f64::sin`, `f64::exp`, ... and `libm::erf`), so
//! the results agree with the JIT's to rounding — the bench checks that before
//! it times anything. These functions are the baseline the JIT is measured
//! against; they must not be tuned beyond what a careful Rust programmer
//! would write (no `unsafe`, no explicit SIMD, no reordering of sums).

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// The Keys cubic-convolution weight (a = -0.5), `bicubic.kern: keys_weight`.
fn keys_weight(t: f64) -> f64 {
    let a = -0.5;
    let x = t.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// `min(max(i, 0), n - 1)`.
fn clamp(i: i64, n: usize) -> usize {
    i.max(0).min(n as i64 - 1) as usize
}

/// `bicubic.kern: resize_into`: resample the `h x w` image `src` into the
/// `oh x ow` image `out` (separable Keys interpolation, replicated border).
pub fn resize_into(src: &[f64], h: usize, w: usize, out: &mut [f64], oh: usize, ow: usize) {
    let sy = h as f64 / oh as f64;
    let sx = w as f64 / ow as f64;
    let mut xtap = vec![[0usize; 4]; ow];
    let mut xwt = vec![[0.0f64; 4]; ow];
    for j in 0..ow {
        let x = (j as f64 + 0.5) * sx - 0.5;
        let x0 = x.floor() as i64;
        let fx = x - x0 as f64;
        for n in 0..4 {
            xtap[j][n] = clamp(x0 + n as i64 - 1, w);
            xwt[j][n] = keys_weight(fx - (n as i64 - 1) as f64);
        }
    }
    for (i, out_row) in out.chunks_exact_mut(ow).enumerate() {
        let y = (i as f64 + 0.5) * sy - 0.5;
        let y0 = y.floor() as i64;
        let fy = y - y0 as f64;
        let w0 = keys_weight(fy + 1.0);
        let w1 = keys_weight(fy);
        let w2 = keys_weight(fy - 1.0);
        let w3 = keys_weight(fy - 2.0);
        let row0 = &src[clamp(y0 - 1, h) * w..][..w];
        let row1 = &src[clamp(y0, h) * w..][..w];
        let row2 = &src[clamp(y0 + 1, h) * w..][..w];
        let row3 = &src[clamp(y0 + 2, h) * w..][..w];
        for (jo, out_pixel) in out_row.iter_mut().enumerate() {
            let mut acc = 0.0;
            for t in 0..4 {
                let c = xtap[jo][t];
                let col = w0 * row0[c] + w1 * row1[c] + w2 * row2[c] + w3 * row3[c];
                acc += xwt[jo][t] * col;
            }
            *out_pixel = acc;
        }
    }
}

/// Python's float `%` (the result takes the divisor's sign), CPython's
/// algorithm for the remainder.
fn python_mod(x: f64, y: f64) -> f64 {
    let mut modulo = x % y;
    if modulo != 0.0 {
        if (y < 0.0) != (modulo < 0.0) {
            modulo += y;
        }
    } else {
        modulo = 0.0f64.copysign(y);
    }
    modulo
}

/// `kepler.kern: wrap_angle`: reduce to [-pi, pi).
fn wrap_angle(m: f64) -> f64 {
    python_mod(m + PI, 2.0 * PI) - PI
}

/// `kepler.kern: kepler_newton`: Newton's method from Danby's start; returns E.
fn kepler_newton(m: f64, e: f64, tol: f64, maxiter: i64) -> f64 {
    let mut big_e = m + 0.85 * e * 1.0f64.copysign(m.sin());
    let mut n = 0;
    while n < maxiter {
        n += 1;
        let f = big_e - e * big_e.sin() - m;
        let fp = 1.0 - e * big_e.cos();
        let de = f / fp;
        big_e -= de;
        if de.abs() <= tol {
            break;
        }
    }
    big_e
}

/// `kepler.kern: eccentric_anomaly_grid`: `out[i, j]` = E for (M[i], e[j]).
pub fn eccentric_anomaly_grid(mean_anomalies: &[f64], eccentricities: &[f64], tol: f64, maxiter: i64, out: &mut [f64]) {
    let ne = eccentricities.len();
    for (&m, out_row) in mean_anomalies.iter().zip(out.chunks_exact_mut(ne)) {
        let wrapped = wrap_angle(m);
        for (&e, out_value) in eccentricities.iter().zip(out_row) {
            *out_value = kepler_newton(wrapped, e, tol, maxiter);
        }
    }
}

/// `calibrate.kern: calibrate_stack`: `out = (raw - bias - dark * exptime) /
/// flat` for every frame of the `nf x h x w` stack (`h * w` = one frame).
pub fn calibrate_stack(frames: &[u16], bias: &[f64], dark: &[f64], flat: &[f64], exptime: f64, out: &mut [f32]) {
    let frame_len = bias.len();
    for (frame, out_frame) in frames.chunks_exact(frame_len).zip(out.chunks_exact_mut(frame_len)) {
        for p in 0..frame_len {
            let raw = f64::from(frame[p]);
            out_frame[p] = ((raw - bias[p] - dark[p] * exptime) / flat[p]) as f32;
        }
    }
}

/// `planets.kern: psf_value`: a unit-flux Gaussian at offset (dx, dy).
fn psf_value(dx: f64, dy: f64, sigma: f64) -> f64 {
    let s2 = sigma * sigma;
    (-0.5 * (dx * dx + dy * dy) / s2).exp() / (2.0 * PI * s2)
}

/// `planets.kern: inject_planets`: a copy of the `h x w` image with a
/// Gaussian PSF of total flux `flux` added at every (xs[k], ys[k]).
pub fn inject_planets(image: &[f64], h: usize, w: usize, xs: &[f64], ys: &[f64], flux: f64, sigma: f64) -> Vec<f64> {
    let mut out = vec![0.0; h * w];
    let half = (5.0 * sigma).ceil() as i64;
    for (y, out_row) in out.chunks_exact_mut(w).enumerate() {
        out_row.copy_from_slice(&image[y * w..][..w]);
        for (&xk_position, &yk_position) in xs.iter().zip(ys) {
            let dy = y as f64 - yk_position;
            if dy.abs() > half as f64 {
                continue;
            }
            let xk = xk_position.floor() as i64;
            let first = (xk - half).max(0);
            let last = (xk + half + 2).min(w as i64);
            for xx in first..last {
                out_row[xx as usize] += flux * psf_value(xx as f64 - xk_position, dy, sigma);
            }
        }
    }
    out
}

/// `nbody.kern: accelerations`: softened gravitational accelerations of `n`
/// bodies; `pos` and `acc` are `n x 3`.
pub fn accelerations(pos: &[f64], mass: &[f64], eps: f64, acc: &mut [f64]) {
    let eps2 = eps * eps;
    for (i, acc_i) in acc.chunks_exact_mut(3).enumerate() {
        let (xi, yi, zi) = (pos[3 * i], pos[3 * i + 1], pos[3 * i + 2]);
        let (mut ax, mut ay, mut az) = (0.0, 0.0, 0.0);
        for (j, (pos_j, &mass_j)) in pos.chunks_exact(3).zip(mass).enumerate() {
            if j == i {
                continue;
            }
            let dx = pos_j[0] - xi;
            let dy = pos_j[1] - yi;
            let dz = pos_j[2] - zi;
            let r2 = dx * dx + dy * dy + dz * dz + eps2;
            let s = mass_j / (r2 * r2.sqrt());
            ax += s * dx;
            ay += s * dy;
            az += s * dz;
        }
        acc_i.copy_from_slice(&[ax, ay, az]);
    }
}

/// `mandelbrot.kern: escape_time`.
fn escape_time(cr: f64, ci: f64, maxiter: i64) -> i64 {
    let (mut zr, mut zi) = (0.0f64, 0.0f64);
    let mut n = 0;
    while n < maxiter {
        let zr2 = zr * zr;
        let zi2 = zi * zi;
        if zr2 + zi2 > 4.0 {
            break;
        }
        zi = 2.0 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
        n += 1;
    }
    n
}

/// `mandelbrot.kern: mandelbrot`: escape times on an `h x w` grid (`w` =
/// row length of `out`).
pub fn mandelbrot(xmin: f64, xmax: f64, ymin: f64, ymax: f64, maxiter: i64, out: &mut [i32], w: usize) {
    let h = out.len() / w;
    let dx = (xmax - xmin) / w as f64;
    let dy = (ymax - ymin) / h as f64;
    for (i, out_row) in out.chunks_exact_mut(w).enumerate() {
        let ci = ymin + i as f64 * dy;
        for (j, pixel) in out_row.iter_mut().enumerate() {
            *pixel = escape_time(xmin + j as f64 * dx, ci, maxiter) as i32;
        }
    }
}

/// `axpy_dot.kern: axpy`: `y += a * x`.
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (y_i, &x_i) in y.iter_mut().zip(x) {
        *y_i += a * x_i;
    }
}

/// `axpy_dot.kern: dot`: a serial left-to-right sum of `x[i] * y[i]`.
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).fold(0.0, |s, (&x_i, &y_i)| s + x_i * y_i)
}

/// `stencil.kern: jacobi_step`: one Jacobi sweep of the `ny x nx` grid `u`
/// for `lap u = f`, boundary copied.
pub fn jacobi_step(u: &[f64], f: &[f64], h2: f64, out: &mut [f64], nx: usize) {
    let ny = u.len() / nx;
    for i in 0..ny {
        let row = i * nx;
        if i == 0 || i == ny - 1 {
            out[row..row + nx].copy_from_slice(&u[row..row + nx]);
            continue;
        }
        out[row] = u[row];
        out[row + nx - 1] = u[row + nx - 1];
        for j in 1..nx - 1 {
            let p = row + j;
            out[p] = 0.25 * (u[p - nx] + u[p + nx] + u[p - 1] + u[p + 1] - h2 * f[p]);
        }
    }
}

/// `histogram.kern: bin_index`: the bin of `v`, or `None` outside [lo, hi)
/// or NaN (hence the negated comparison, as in the kernel).
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn bin_index(v: f64, lo: f64, scale: f64, nbins: i64) -> Option<usize> {
    if !(v >= lo) {
        return None;
    }
    let b = ((v - lo) * scale) as i64;
    if b >= nbins {
        return None;
    }
    Some(b as usize)
}

/// `histogram.kern: histogram`: count `values` into `counts` (equal bins over
/// [lo, hi)); returns how many were counted.
pub fn histogram(values: &[f64], lo: f64, hi: f64, counts: &mut [i64]) -> i64 {
    let nbins = counts.len() as i64;
    let scale = nbins as f64 / (hi - lo);
    let mut total = 0;
    for &v in values {
        if v >= hi {
            continue;
        }
        if let Some(b) = bin_index(v, lo, scale, nbins) {
            counts[b] += 1;
            total += 1;
        }
    }
    total
}

/// `black_scholes.kern: norm_cdf` (the kernel's literal `0.7071067811865476`
/// is the `f64` nearest 1/sqrt(2), `FRAC_1_SQRT_2`).
fn norm_cdf(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x * FRAC_1_SQRT_2))
}

/// `black_scholes.kern: black_scholes`: call and put prices per option.
#[allow(clippy::too_many_arguments)]
pub fn black_scholes(
    spot: &[f64],
    strike: &[f64],
    expiry: &[f64],
    r: f64,
    sigma: f64,
    call: &mut [f64],
    put: &mut [f64],
) {
    for i in 0..spot.len() {
        let (s, k, t) = (spot[i], strike[i], expiry[i]);
        let vt = sigma * t.sqrt();
        let d1 = ((s / k).ln() + (r + 0.5 * sigma * sigma) * t) / vt;
        let d2 = d1 - vt;
        let disc = k * (-r * t).exp();
        call[i] = s * norm_cdf(d1) - disc * norm_cdf(d2);
        put[i] = disc * norm_cdf(-d2) - s * norm_cdf(-d1);
    }
}
