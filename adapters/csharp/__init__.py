"""The C# backend: a contract-native program over GDCM's C# bindings (`*.cs` here), run with Mono."""
