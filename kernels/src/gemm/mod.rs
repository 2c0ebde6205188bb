//! Single-precision matrix multiply through the `gemm` crate, with strides so callers can
//! express transposes without copying.

/// A row/column-strided matrix view: element (i, j) is at `ptr[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

impl<'a> MatRef<'a> {
    /// A dense row-major matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols as isize,
            cs: 1,
        }
    }
    /// The transpose of a dense row-major `cols × rows` matrix, without copying.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: 1,
            cs: rows as isize,
        }
    }
    fn check(&self) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        let last = (self.rows as isize - 1) * self.rs + (self.cols as isize - 1) * self.cs;
        assert!(
            self.rs >= 0 && self.cs >= 0 && (last as usize) < self.data.len(),
            "matrix view out of bounds"
        );
    }
}

/// `c = alpha·c + beta·(a · b)` where c is dense row-major `m × n` with row stride `ldc`.
/// `alpha = 0` overwrites c (its prior contents are ignored, NaNs included).
/// `threads > 1` lets the GEMM library split the work over the current rayon pool.
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
) {
    assert!(
        a.rows == m && a.cols == k && b.rows == k && b.cols == n,
        "sgemm dimensions disagree"
    );
    a.check();
    b.check();
    assert!(
        m == 0 || n == 0 || (m - 1) * ldc + n <= c.len(),
        "sgemm output out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    let par = if threads > 1 && m * n * k >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: all three views were bounds-checked above; `c` is uniquely borrowed and does not
    // overlap `a` or `b` (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            alpha != 0.0,
            a.data.as_ptr(),
            a.cs,
            a.rs,
            b.data.as_ptr(),
            b.cs,
            b.rs,
            alpha,
            beta,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_with_and_without_transpose() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(m, n, k, &a, &b);
        let mut c = vec![f32::NAN; m * n];
        sgemm(
            m,
            n,
            k,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            &mut c,
            n,
            0.0,
            1.0,
            1,
        );
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        // b stored transposed (n × k row-major).
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut c2 = vec![0.0; m * n];
        sgemm(
            m,
            n,
            k,
            MatRef::row_major(&a, m, k),
            MatRef::transposed(&bt, k, n),
            &mut c2,
            n,
            0.0,
            1.0,
            1,
        );
        for (x, y) in c2.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}
