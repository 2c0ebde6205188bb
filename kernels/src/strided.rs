//! Strided iteration over a static shape: the machinery shared by broadcasting, transposition,
//! slicing, expansion and reduction.
//!
//! A [`Strided`] describes N operands walked together over one shape, each with its own element
//! strides (0 for a broadcast axis, negative for a reversed one). It is built once, merging
//! adjacent axes every operand lays out contiguously, and then walked row by row without
//! allocating: the innermost axis is a "row" the caller processes with its own tight loop.

/// The highest rank [`Strided`] accepts after merging axes.
pub const MAX_RANK: usize = 16;

/// Row-major element strides of a contiguous tensor.
pub fn contiguous_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut acc = 1isize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d as isize;
    }
    strides
}

/// Strides that read a contiguous tensor of shape `input` broadcast (numpy rules) to `output`:
/// one per output axis, 0 where the input is missing or has size 1.
pub fn broadcast_strides(input: &[usize], output: &[usize]) -> Vec<isize> {
    let contiguous = contiguous_strides(input);
    let lead = output.len() - input.len();
    (0..output.len())
        .map(|i| {
            if i < lead || input[i - lead] == 1 {
                0
            } else {
                contiguous[i - lead]
            }
        })
        .collect()
}

/// N operands walked together over one shape. See the module documentation.
#[derive(Debug, Clone)]
pub struct Strided<const N: usize> {
    /// Outer axes (all but the innermost), after merging.
    dims: Vec<usize>,
    strides: Vec<[isize; N]>,
    inner: usize,
    inner_strides: [isize; N],
    rows: usize,
}

impl<const N: usize> Strided<N> {
    /// `strides[k]` holds operand k's element stride for each axis of `shape`. Returns None when
    /// the rank left after merging exceeds [`MAX_RANK`].
    pub fn new(shape: &[usize], strides: [&[isize]; N]) -> Option<Self> {
        debug_assert!(strides.iter().all(|s| s.len() == shape.len()));
        // Drop size-1 axes (their stride never matters), then merge from the inside out.
        let mut dims: Vec<usize> = Vec::new();
        let mut st: Vec<[isize; N]> = Vec::new();
        let empty = shape.contains(&0);
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 {
                continue;
            }
            let s: [isize; N] = std::array::from_fn(|k| strides[k][i]);
            if let (Some(&pd), Some(ps)) = (dims.last(), st.last()) {
                if (0..N).all(|k| ps[k] == s[k] * d as isize) {
                    let merged = pd * d;
                    *dims.last_mut().expect("non-empty") = merged;
                    *st.last_mut().expect("non-empty") = s;
                    continue;
                }
            }
            dims.push(d);
            st.push(s);
        }
        let (inner, inner_strides) = match (dims.pop(), st.pop()) {
            (Some(d), Some(s)) => (d, s),
            _ => (1, [0; N]),
        };
        if dims.len() > MAX_RANK {
            return None;
        }
        let rows = if empty { 0 } else { dims.iter().product() };
        Some(Strided {
            dims,
            strides: st,
            inner: if empty { 0 } else { inner },
            inner_strides,
            rows,
        })
    }

    /// Elements in one row (the innermost merged axis).
    pub fn inner(&self) -> usize {
        self.inner
    }
    /// Each operand's stride along a row.
    pub fn inner_strides(&self) -> [isize; N] {
        self.inner_strides
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Outer axes left after merging.
    pub fn outer_rank(&self) -> usize {
        self.dims.len()
    }
    /// The merged outer axes and their strides, outermost first.
    pub fn outer(&self) -> (&[usize], &[[isize; N]]) {
        (&self.dims, &self.strides)
    }

    /// Calls `f(row, offsets)` for rows `start..end`, with each operand's element offset at the
    /// start of that row (relative to the operand's base).
    #[inline]
    pub fn for_rows(&self, start: usize, end: usize, mut f: impl FnMut(usize, [isize; N])) {
        let end = end.min(self.rows);
        if start >= end {
            return;
        }
        let rank = self.dims.len();
        let mut idx = [0usize; MAX_RANK];
        let mut off = [0isize; N];
        let mut rem = start;
        for a in (0..rank).rev() {
            idx[a] = rem % self.dims[a];
            rem /= self.dims[a];
            for (o, s) in off.iter_mut().zip(self.strides[a]) {
                *o += idx[a] as isize * s;
            }
        }
        for row in start..end {
            f(row, off);
            // Advance the odometer.
            let mut a = rank;
            while a > 0 {
                a -= 1;
                idx[a] += 1;
                if idx[a] < self.dims[a] {
                    for (o, s) in off.iter_mut().zip(self.strides[a]) {
                        *o += s;
                    }
                    break;
                }
                idx[a] = 0;
                for (o, s) in off.iter_mut().zip(self.strides[a]) {
                    *o -= (self.dims[a] as isize - 1) * s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_contiguous_axes() {
        let shape = [2, 3, 4];
        let c = contiguous_strides(&shape);
        let s = Strided::new(&shape, [&c, &c]).unwrap();
        assert_eq!((s.rows(), s.inner(), s.inner_strides()), (1, 24, [1, 1]));
    }

    #[test]
    fn per_channel_broadcast_keeps_rows() {
        let out = [2, 3, 4, 5];
        let c = contiguous_strides(&out);
        let b = broadcast_strides(&[3, 1, 1], &out);
        let s = Strided::new(&out, [&c, &b]).unwrap();
        assert_eq!((s.rows(), s.inner(), s.inner_strides()), (6, 20, [1, 0]));
        let mut seen = Vec::new();
        s.for_rows(0, 6, |_, o| seen.push(o));
        assert_eq!(
            seen,
            vec![[0, 0], [20, 1], [40, 2], [60, 0], [80, 1], [100, 2]]
        );
        let mut tail = Vec::new();
        s.for_rows(4, 6, |r, o| tail.push((r, o)));
        assert_eq!(tail, vec![(4, [80, 1]), (5, [100, 2])]);
    }

    #[test]
    fn scalars_and_empty() {
        let s = Strided::new(&[], [&[], &[]]).unwrap();
        assert_eq!((s.rows(), s.inner()), (1, 1));
        let s = Strided::<1>::new(&[3, 0], [&[0, 1]]).unwrap();
        assert_eq!(s.rows() * s.inner(), 0);
    }
}
