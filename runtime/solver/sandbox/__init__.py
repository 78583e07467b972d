"""Code that runs inside the sandbox worker processes (standard library only, except sympy in
the EoT worker). Workers put this folder alone on their path, so nothing here may shadow a
standard-library module name."""
