using LocalDiffusion.Evaluation;
using SkiaSharp;

namespace LocalDiffusion.Tests.Shapes;

/// <summary>
/// The analyser on pictures drawn here with SkiaSharp (anti-aliased paths, not the analyser's own geometry):
/// the drawn attributes are the known answers.
/// </summary>
public class ShapesAnalyserTests
{
    private const int Side = 128;

    public static TheoryData<int, ShapeKind, string, string, string, double> Drawings()
    {
        // Every shape at every position (5 × 9), colours and sizes rotating through the palette, at both native
        // sizes of the shapes recipes (128 px, and 64 px where the small object is 13 px across).
        var data = new TheoryData<int, ShapeKind, string, string, string, double>();
        var shapes = Enum.GetValues<ShapeKind>();
        var sizes = new[] { 0.10, 0.15, 0.21 };
        var i = 0;
        foreach (var shape in shapes)
            foreach (var position in ScenePositions.All)
            {
                var color = NamedColor.Palette[i % NamedColor.Palette.Count].Name;
                var background = NamedColor.Palette[(i * 3 + 1) % NamedColor.Palette.Count].Name;
                if (background == color)
                    background = NamedColor.Palette[(i * 3 + 2) % NamedColor.Palette.Count].Name;
                foreach (var side in new[] { 128, 64 })
                    data.Add(side, shape, color, background, position, sizes[i % sizes.Length]);
                i++;
            }
        return data;
    }

    [Theory]
    [MemberData(nameof(Drawings))]
    public void ReadsWhatWasDrawn(int side, ShapeKind shape, string color, string background, string position, double size)
    {
        var (x, y) = Centre(position);
        var rgb = Draw(background, canvas => DrawShape(canvas, shape, color, x * side, y * side, size * side), side);

        var seen = ShapesAnalyser.Analyse(rgb, side, side);

        Assert.Equal(new SceneAttributes(color, background, shape, position), seen);
    }

    [Fact]
    public void APlainPictureHasNoObject()
    {
        var seen = ShapesAnalyser.Analyse(Draw("purple", _ => { }), Side, Side);
        Assert.Equal(new SceneAttributes(null, "purple", null, null), seen);
    }

    [Fact]
    public void TheLargestObjectIsTheOneReported()
    {
        var rgb = Draw("white", canvas =>
        {
            DrawShape(canvas, ShapeKind.Circle, "red", 30, 30, 10);
            DrawShape(canvas, ShapeKind.Cross, "blue", 90, 90, 25);
        });
        Assert.Equal(new SceneAttributes("blue", "white", ShapeKind.Cross, "bottom right"), ShapesAnalyser.Analyse(rgb, Side, Side));
    }

    [Fact]
    public void WrongSizesAreRejected()
    {
        var rgb = new byte[Side * Side * 3];
        var error = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => ShapesAnalyser.Analyse(rgb, Side, Side + 1));
        Assert.Contains("128×129×3", error.Message);
    }

    [Fact]
    public void ScoresCountMatchesPerAttribute()
    {
        var want = new SceneAttributes("red", "blue", ShapeKind.Star, "left");
        var score = ShapesScore.Of(
        [
            (want, want),
            (want, want with { Shape = ShapeKind.Circle }),
            (want, want with { Position = "top left", Color = "orange" }),
            (want, new SceneAttributes(null, "blue", null, null)),
        ]);
        Assert.Equal(new ShapesScore(4, 0.5, 1.0, 0.5, 0.5), score);
    }

    [Fact]
    public void TheShippedEvaluationSetCoversEveryShapeAndPosition()
    {
        var cases = ShapesEvaluationSet.Load(Path.Combine(TestPaths.ModelsDir, "shapes", "eval_prompts.json"));
        Assert.True(cases.Count >= 40, $"{cases.Count} cases");
        Assert.Equal(Enum.GetValues<ShapeKind>().Length, cases.Select(c => c.Expected.Shape).Distinct().Count());
        Assert.Equal(ScenePositions.All.Count, cases.Select(c => c.Expected.Position).Distinct().Count());
        Assert.All(cases, c => Assert.NotEqual(c.Expected.Color, c.Expected.Background));
    }

    [Fact]
    public void AnEvaluationSetWithAnUnknownShapeIsRejected()
    {
        var path = Path.Combine(Path.GetTempPath(), $"shapes-eval-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{"cases": [{"prompt": "a red hexagon", "seed": 1, "color": "red", "background": "blue", "shape": "hexagon", "position": "left"}]}""");
        try
        {
            var error = Assert.Throws<InvalidDataException>(() => ShapesEvaluationSet.Load(path));
            Assert.Contains("case 0", error.Message);
            Assert.Contains("hexagon", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static (double X, double Y) Centre(string position)
    {
        // The world's anchors (tools/shapes/world.py POSITIONS): 0.27 from an edge, or the middle.
        var x = position.Contains("left") ? 0.27 : position.Contains("right") ? 0.73 : 0.5;
        var y = position.Contains("top") ? 0.27 : position.Contains("bottom") ? 0.73 : 0.5;
        return (x, y);
    }

    private static byte[] Draw(string background, Action<SKCanvas> draw, int side = Side)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(Color(background));
            draw(canvas);
        }
        var rgba = bitmap.Bytes;
        var rgb = new byte[side * side * 3];
        for (var i = 0; i < side * side; i++)
        {
            rgb[3 * i] = rgba[4 * i];
            rgb[3 * i + 1] = rgba[4 * i + 1];
            rgb[3 * i + 2] = rgba[4 * i + 2];
        }
        return rgb;
    }

    private static void DrawShape(SKCanvas canvas, ShapeKind shape, string color, double cx, double cy, double r)
    {
        using var paint = new SKPaint { Color = Color(color), IsAntialias = true, Style = SKPaintStyle.Fill };
        float x = (float)cx, y = (float)cy, s = (float)r;
        switch (shape)
        {
            case ShapeKind.Circle:
                canvas.DrawCircle(x, y, s, paint);
                break;
            case ShapeKind.Square:
                canvas.DrawRect(x - 0.85f * s, y - 0.85f * s, 1.7f * s, 1.7f * s, paint);
                break;
            case ShapeKind.Triangle:
                canvas.DrawPath(Polygon([(x, y - s), (x + s, y + s), (x - s, y + s)]), paint);
                break;
            case ShapeKind.Star:
                var points = Enumerable.Range(0, 10).Select(k =>
                {
                    var radius = k % 2 == 0 ? s : 0.5f * s;
                    var angle = k * Math.PI / 5;
                    return (x + radius * (float)Math.Sin(angle), y - radius * (float)Math.Cos(angle));
                });
                canvas.DrawPath(Polygon(points), paint);
                break;
            case ShapeKind.Cross:
                canvas.DrawRect(x - 0.34f * s, y - s, 0.68f * s, 2 * s, paint);
                canvas.DrawRect(x - s, y - 0.34f * s, 2 * s, 0.68f * s, paint);
                break;
        }
    }

    private static SKPath Polygon(IEnumerable<(float X, float Y)> points)
    {
        var path = new SKPath();
        var first = true;
        foreach (var (px, py) in points)
        {
            if (first) path.MoveTo(px, py); else path.LineTo(px, py);
            first = false;
        }
        path.Close();
        return path;
    }

    private static SKColor Color(string name)
    {
        var c = NamedColor.Parse(name);
        return new SKColor(c.R, c.G, c.B);
    }
}
