{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["native/fsx.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
