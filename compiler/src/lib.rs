//! edgefuse-compiler: ONNX → IR → passes → `.efm`.
