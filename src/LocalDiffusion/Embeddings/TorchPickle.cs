using System.Buffers.Binary;
using System.Text;

namespace LocalDiffusion.Embeddings;

/// <summary>A pickled dict, keys in order (Python dicts and OrderedDicts keep insertion order).</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];

    /// <summary>The value under string key <paramref name="key"/>, or null when absent.</summary>
    public bool TryGet(string key, out object? value)
    {
        foreach (var (k, v) in Items)
            if (k is string s && s == key)
            {
                value = v;
                return true;
            }
        value = null;
        return false;
    }

    public void Set(object? key, object? value)
    {
        for (var i = 0; i < Items.Count; i++)
            if (Equals(Items[i].Key, key))
            {
                Items[i] = new(key, value);
                return;
            }
        Items.Add(new(key, value));
    }
}

/// <summary>A class or function a pickle names (GLOBAL module name); only the ones <see cref="TorchPickle"/> allows get this far.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>An instance of an allowed class (torch.nn.ParameterDict in old embeddings): its class and its BUILD state.</summary>
internal sealed class PickleObject(PickleGlobal type)
{
    public PickleGlobal Type { get; } = type;

    public object? State { get; set; }
}

/// <summary>A torch storage named by a pickle's persistent id: its element type and its record in the zip (data/KEY).</summary>
internal sealed record TorchStorage(string Key, string DType, long Elements);

/// <summary>A tensor as torch._utils._rebuild_tensor_v2 describes it: a view of a storage.</summary>
internal sealed record TorchTensor(TorchStorage Storage, long Offset, long[] Shape, long[] Stride);

/// <summary>
/// A strict reader for the subset of Python's pickle that torch.save writes for tensors in containers (protocol 2, as torch
/// uses, and the protocol-4 opcodes a newer pickler may emit): dicts, lists, tuples, strings, numbers, None/True/False, and
/// tensors through a whitelist of torch rebuild functions. It never executes anything: a GLOBAL outside the whitelist, an
/// unknown opcode or a malformed stream is a <see cref="TextualInversionException"/> naming the file, the record and the
/// byte offset in it.
/// </summary>
internal sealed class TorchPickle
{
    private const int MaxStack = 100_000, MaxMemo = 100_000, MaxDepth = 64;

    // What the reader builds; each is interpreted below, nothing is imported or called.
    private static readonly HashSet<string> Allowed = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage",
        "torch.DoubleStorage", "copyreg._reconstructor", "builtins.object", "__builtin__.object",
        "torch.nn.modules.container.ParameterDict", "__builtin__.set", "builtins.set",
    };

    private readonly string _path, _record;
    private readonly byte[] _data;
    private readonly List<object?> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, object?> _memo = [];
    private int _position, _opcodeAt;

    private TorchPickle(string path, string record, byte[] data)
    {
        _path = path;
        _record = record;
        _data = data;
    }

    /// <summary>The object <paramref name="data"/> (the record <paramref name="record"/> of <paramref name="path"/>) unpickles to.</summary>
    public static object? Load(string path, string record, byte[] data) => new TorchPickle(path, record, data).Run();

    private TextualInversionException Bad(string problem) =>
        new(_path, null, null, $"byte offset {_opcodeAt} of its {_record} record: {problem} (torch.save's pickle is read by a strict reader that runs no code)");

    private object? Run()
    {
        while (true)
        {
            _opcodeAt = _position;
            var op = Byte();
            switch (op)
            {
                case 0x80: Byte(); break; // PROTO
                case 0x95: Bytes(8); break; // FRAME (a length hint)
                case (byte)'.': // STOP
                    if (_stack.Count != 1 || _marks.Count != 0) throw Bad($"the pickle stops with {_stack.Count} values on its stack, not 1");
                    return _stack[0];
                case (byte)'}': Push(new PickleDict()); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)'(':
                    if (_marks.Count >= MaxDepth) throw Bad($"containers nest more than {MaxDepth} deep");
                    _marks.Add(_stack.Count);
                    break;
                case (byte)'q': Memo(Byte()); break; // BINPUT
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))); break; // LONG_BINPUT
                case 0x94: Memo(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(Recall(Byte())); break; // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))); break; // LONG_BINGET
                case (byte)'X': Push(Utf8(Length(4))); break; // BINUNICODE
                case 0x8c: Push(Utf8(Byte())); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(Length(8))); break; // BINUNICODE8
                case (byte)'T': Push(Latin1(Length(4))); break; // BINSTRING
                case (byte)'U': Push(Latin1(Byte())); break; // SHORT_BINSTRING
                case (byte)'B': Push(Bytes(Length(4)).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Bytes(Byte()).ToArray()); break; // SHORT_BINBYTES
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break; // BININT
                case (byte)'K': Push((long)Byte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break; // BININT2
                case 0x8a: Push(Long(Byte())); break; // LONG1
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break; // BINFLOAT
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case 0x85: Push(new[] { Pop() }); break; // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)'t': Push(PopMark().ToArray()); break; // TUPLE
                case (byte)'l': Push(PopMark()); break; // LIST
                case (byte)'a': { var item = Pop(); ListOnTop().Add(item); break; } // APPEND
                case (byte)'e': { var items = PopMark(); ListOnTop().AddRange(items); break; } // APPENDS
                case (byte)'d': Push(Pairs(PopMark(), new PickleDict())); break; // DICT
                case (byte)'s': { var value = Pop(); var key = Pop(); DictOnTop().Set(Key(key), value); break; } // SETITEM
                case (byte)'u': { var items = PopMark(); Pairs(items, DictOnTop()); break; } // SETITEMS
                case (byte)'c': Push(Global(Line(), Line())); break; // GLOBAL
                case 0x93: { var name = Pop() as string; var module = Pop() as string; Push(Global(module ?? throw Bad("STACK_GLOBAL without a module name"), name ?? throw Bad("STACK_GLOBAL without a name"))); break; }
                case (byte)'Q': Push(Persistent(Pop())); break; // BINPERSID
                case (byte)'R': { var args = Pop(); var callable = Pop(); Push(Reduce(callable, args)); break; } // REDUCE
                case 0x81: { var args = Pop(); var type = Pop(); Push(New(type, args)); break; } // NEWOBJ
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; } // BUILD
                default: throw Bad($"opcode 0x{op:x2} is not one torch.save writes for tensors in containers");
            }
        }
    }

    private byte Byte()
    {
        if (_position >= _data.Length) throw Bad("the pickle ends before STOP: truncated");
        return _data[_position++];
    }

    private ReadOnlySpan<byte> Bytes(int count)
    {
        if (count < 0 || count > _data.Length - _position) throw Bad($"a {count}-byte field runs past the end of the pickle ({_data.Length} bytes): truncated or damaged");
        var span = _data.AsSpan(_position, count);
        _position += count;
        return span;
    }

    private int Length(int size)
    {
        var value = size == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)) : BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));
        return value > (ulong)(_data.Length - _position) ? throw Bad($"a string of {value} bytes is longer than the rest of the pickle") : (int)value;
    }

    private string Utf8(int count)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(Bytes(count));
        }
        catch (DecoderFallbackException)
        {
            throw Bad("a string is not valid UTF-8");
        }
    }

    private string Latin1(int count) => Encoding.Latin1.GetString(Bytes(count));

    private long Long(int count)
    {
        if (count > 8) throw Bad($"an integer of {count} bytes is larger than any a tensor file needs");
        var bytes = Bytes(count);
        long value = 0;
        for (var i = count - 1; i >= 0; i--) value = (value << 8) | bytes[i];
        // Two's complement: sign-extend from the top byte.
        if (count is > 0 and < 8 && (bytes[count - 1] & 0x80) != 0) value -= 1L << (8 * count);
        return value;
    }

    private string Line()
    {
        var end = Array.IndexOf(_data, (byte)'\n', _position);
        if (end < 0 || end - _position > 256) throw Bad("a GLOBAL name has no end of line");
        var text = Encoding.ASCII.GetString(_data, _position, end - _position);
        _position = end + 1;
        return text;
    }

    private void Push(object? value)
    {
        if (_stack.Count >= MaxStack) throw Bad($"more than {MaxStack} values on the stack");
        _stack.Add(value);
    }

    private object? Pop()
    {
        var floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) throw Bad("an opcode takes a value from an empty stack");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object? Peek() => _stack.Count > (_marks.Count > 0 ? _marks[^1] : 0) ? _stack[^1] : throw Bad("BUILD on an empty stack");

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Bad("an opcode needs a MARK that is not there");
        var start = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private List<object?> ListOnTop() => Peek() as List<object?> ?? throw Bad("APPEND to something that is not a list");

    private PickleDict DictOnTop() => Peek() as PickleDict ?? throw Bad("SETITEM on something that is not a dict");

    private PickleDict Pairs(List<object?> items, PickleDict into)
    {
        if (items.Count % 2 != 0) throw Bad("a dict has a key without a value");
        for (var i = 0; i < items.Count; i += 2) into.Set(Key(items[i]), items[i + 1]);
        return into;
    }

    // Keys a tensor file has: strings and integers (and tuples of them); anything else would need Python's hashing.
    private object? Key(object? key) => key is string or long or bool or null ? key : throw Bad($"a dict key is a {Describe(key)}, not a string or integer");

    private void Memo(long index)
    {
        if (_stack.Count == 0) throw Bad("PUT with an empty stack");
        if (_memo.Count >= MaxMemo && !_memo.ContainsKey(index)) throw Bad($"more than {MaxMemo} memo entries");
        _memo[index] = _stack[^1];
    }

    private object? Recall(long index) => _memo.TryGetValue(index, out var value) ? value : throw Bad($"GET of memo entry {index}, which was never PUT");

    private PickleGlobal Global(string module, string name)
    {
        var global = new PickleGlobal(module, name);
        return Allowed.Contains(global.ToString()) ? global
            : throw Bad($"it names {global}, which is not a tensor, a storage or a container (only plain tensors in dicts are read; re-save the embedding with torch.save of plain tensors, or as .safetensors)");
    }

    // torch.save's persistent id for a storage: ('storage', storage class, key, location, element count).
    private TorchStorage Persistent(object? id)
    {
        if (id is not object?[] { Length: 5 } t || t[0] is not "storage" || t[1] is not PickleGlobal type || t[2] is not string key || t[4] is not long count || count < 0)
            throw Bad($"a persistent id is {Describe(id)}, not torch's ('storage', type, key, location, size)");
        var dtype = type.Name switch
        {
            "FloatStorage" => "float32",
            "HalfStorage" => "float16",
            "BFloat16Storage" => "bfloat16",
            "DoubleStorage" => "float64",
            _ => throw Bad($"a storage of type {type} is not a floating-point storage"),
        };
        return new TorchStorage(key, dtype, count);
    }

    private object? Reduce(object? callable, object? args)
    {
        if (callable is not PickleGlobal global || args is not object?[] a) throw Bad($"REDUCE calls {Describe(callable)} with {Describe(args)}");
        switch (global.ToString())
        {
            case "collections.OrderedDict" when a.Length == 0:
                return new PickleDict();
            case "__builtin__.set" or "builtins.set" when a.Length == 1 && a[0] is List<object?> items:
                return items; // a module's _non_persistent_buffers_set: read as the list it was built from

            case "torch._utils._rebuild_tensor_v2" when a.Length >= 4 && a[0] is TorchStorage storage && a[1] is long offset:
                return new TorchTensor(storage, offset, Longs(a[2], "size"), Longs(a[3], "stride"));
            case "torch._utils._rebuild_parameter" or "torch._utils._rebuild_parameter_with_state" when a.Length >= 1 && a[0] is TorchTensor tensor:
                return tensor;
            case "copyreg._reconstructor" when a.Length == 3 && a[0] is PickleGlobal type && type.Module.StartsWith("torch.nn.", StringComparison.Ordinal):
                return new PickleObject(type);
            default:
                throw Bad($"REDUCE calls {global} with {Describe(args)}, which is not how torch.save writes a tensor");
        }
    }

    private object New(object? type, object? args) =>
        type is PickleGlobal { Module: var m } global && m.StartsWith("torch.nn.", StringComparison.Ordinal) && args is object?[]
            ? new PickleObject(global)
            : throw Bad($"NEWOBJ of {Describe(type)}");

    private void Build(object? target, object? state)
    {
        if (target is PickleObject o) o.State = state;
        else if (target is TorchTensor && state is null or PickleDict) { } // a parameter's extra state: no effect on its values
        else throw Bad($"BUILD on a {Describe(target)}");
    }

    private long[] Longs(object? value, string what)
    {
        if (value is not object?[] items) throw Bad($"a tensor's {what} is {Describe(value)}, not a tuple");
        var result = new long[items.Length];
        for (var i = 0; i < items.Length; i++)
            result[i] = items[i] is long v && v >= 0 ? v : throw Bad($"a tensor's {what} has {Describe(items[i])}, not a non-negative integer");
        return result;
    }

    internal static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"the string \"{(s.Length > 40 ? s[..40] + "…" : s)}\"",
        long l => $"the integer {l}",
        object?[] t => $"a tuple of {t.Length}",
        List<object?> l => $"a list of {l.Count}",
        PickleDict d => $"a dict of {d.Items.Count}",
        PickleGlobal g => g.ToString(),
        TorchTensor t => $"a tensor [{string.Join(", ", t.Shape)}]",
        _ => value.GetType().Name,
    };
}
