/// Tingxie's version, as `tingxie --version` and `/v1/system` report it.
public let tingxieVersion = "0.1.0"
