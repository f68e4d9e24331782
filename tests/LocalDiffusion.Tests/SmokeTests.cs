namespace LocalDiffusion.Tests;

public class SmokeTests
{
    [Fact]
    public void RepoRootHoldsTheSolution() => Assert.True(File.Exists(Path.Combine(TestPaths.RepoRoot, "LocalDiffusion.sln")));
}
