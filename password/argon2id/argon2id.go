// Package argon2id computes argon2id (RFC 9106, version 0x13) in memory the
// caller keeps between computations.
//
// golang.org/x/crypto/argon2 is the reference for Go and this package must
// agree with it bit for bit (the tests compare both over many parameter sets),
// but its IDKey allocates the whole memory cost — 19 MiB per login with
// OWASP's parameters — on every call. A server verifying passwords all day
// then hands the runtime a fresh 19 MiB object per login: the collector runs
// far more often, the runtime clears each new object, and once a memory limit
// makes the scavenger return the freed pages, the kernel faults them back in
// on the next login. Under a password flood that cost a fifth of the login
// rate or a doubled resident size (docs/BENCHMARKS.md, "Argon2id in reused
// memory"). A [Memory] is allocated once per concurrent computation and
// reused, so a flood creates no argon2 garbage at all.
//
// The package does only what the password package needs: argon2id without a
// secret key or associated data.
package argon2id

import (
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/crypto/blake2b"
)

// Version is the argon2 version this package computes (RFC 9106 §3.1: 0x13),
// written into every PHC string.
const Version = 0x13

const (
	blockWords = 128 // a 1 KiB block as 64-bit words
	slices     = 4   // synchronisation points per pass (RFC 9106's SL)
	typeID     = 2   // argon2id in H0 and in the address generator input
	blockBytes = blockWords * 8
)

type block [blockWords]uint64

// Memory is the working memory of argon2id computations. Its zero value is
// ready to use; Key grows it to the memory cost it is asked for and keeps it,
// so the next computation with the same cost allocates nothing. A Memory is
// not safe for concurrent use: give each concurrent computation its own.
type Memory struct {
	blocks []block
}

// Size returns the memory, in KiB, the Memory holds (the largest memory cost
// it has computed with), so an owner can drop one that an unusually
// expensive computation grew.
func (m *Memory) Size() uint32 { return uint32(cap(m.blocks)) }

// Key derives a keyLen-byte argon2id tag of password and salt with time
// passes over memory KiB in threads lanes, exactly as
// golang.org/x/crypto/argon2.IDKey does for the same arguments. Like IDKey it
// rounds memory down to a multiple of 4×threads (and up to at least
// 8×threads). It returns an error rather than panicking when the parameters
// are outside what argon2 defines (time or threads zero, keyLen zero), because
// they may come from a stored hash.
func (m *Memory) Key(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) ([]byte, error) {
	if time < 1 || threads < 1 || keyLen < 1 {
		return nil, fmt.Errorf("argon2id: time %d, threads %d and key length %d must all be at least 1", time, threads, keyLen)
	}
	h0 := initialHash(password, salt, time, memory, uint32(threads), keyLen)
	lanes := uint32(threads)
	memory = max(memory, 2*slices*lanes) / (slices * lanes) * (slices * lanes)
	if uint32(cap(m.blocks)) < memory {
		m.blocks = make([]block, memory) // the only allocation of the memory cost, once
	}
	m.blocks = m.blocks[:memory]
	c := computation{b: m.blocks, passes: time, lanes: lanes, laneLen: memory / lanes}
	c.fillFirstBlocks(&h0)
	c.fillMemory()
	return c.tag(keyLen), nil
}

// initialHash is H0 (RFC 9106 §3.2 step 1), with an empty secret and empty
// associated data.
func initialHash(password, salt []byte, time, memory, lanes, keyLen uint32) [blake2b.Size]byte {
	h, _ := blake2b.New512(nil) // cannot fail without a key
	var n [4]byte
	put := func(v uint32) {
		binary.LittleEndian.PutUint32(n[:], v)
		h.Write(n[:])
	}
	for _, v := range []uint32{lanes, keyLen, memory, time, Version, typeID} {
		put(v)
	}
	for _, s := range [][]byte{password, salt, nil, nil} { // P, S, K (secret), X (associated data)
		put(uint32(len(s)))
		h.Write(s)
	}
	var out [blake2b.Size]byte
	h.Sum(out[:0])
	return out
}

// variableHash is H' (RFC 9106 §3.3): BLAKE2b stretched to len(out) bytes.
func variableHash(out []byte, in ...[]byte) {
	var prefix [4]byte
	binary.LittleEndian.PutUint32(prefix[:], uint32(len(out)))
	h, _ := blake2b.New(min(len(out), blake2b.Size), nil) // 1..64 bytes: cannot fail
	h.Write(prefix[:])
	for _, p := range in {
		h.Write(p)
	}
	if len(out) <= blake2b.Size {
		h.Sum(out[:0])
		return
	}
	// V1 = H(len||in); each later V is the hash of the one before; the
	// output is the first half of each V but the last, then the last whole.
	var v [blake2b.Size]byte
	h.Sum(v[:0])
	for len(out) > blake2b.Size {
		copy(out, v[:blake2b.Size/2])
		out = out[blake2b.Size/2:]
		if len(out) > blake2b.Size {
			v = blake2b.Sum512(v[:])
		}
	}
	last, _ := blake2b.New(len(out), nil)
	last.Write(v[:])
	last.Sum(out[:0])
}

// computation is one argon2id run over memory already sized for it.
type computation struct {
	b       []block
	passes  uint32
	lanes   uint32
	laneLen uint32 // blocks per lane (RFC 9106's q)
}

func (c *computation) segmentLen() uint32 { return c.laneLen / slices }

// fillFirstBlocks computes the first two blocks of every lane from H0
// (RFC 9106 §3.2 steps 3 and 4).
func (c *computation) fillFirstBlocks(h0 *[blake2b.Size]byte) {
	var buf [blockBytes]byte
	var idx [8]byte
	for lane := range c.lanes {
		for j := range uint32(2) {
			binary.LittleEndian.PutUint32(idx[:4], j)
			binary.LittleEndian.PutUint32(idx[4:], lane)
			variableHash(buf[:], h0[:], idx[:])
			blk := &c.b[lane*c.laneLen+j]
			for w := range blk {
				blk[w] = binary.LittleEndian.Uint64(buf[w*8:])
			}
		}
	}
}

// fillMemory runs every pass, slice by slice. Within a slice the lanes only
// read blocks of finished slices (and their own), so they run in parallel,
// and every lane finishes a slice before any starts the next.
func (c *computation) fillMemory() {
	for pass := range c.passes {
		for slice := range uint32(slices) {
			if c.lanes == 1 {
				c.fillSegment(pass, 0, slice)
			} else {
				c.fillSlice(pass, slice)
			}
		}
	}
}

// fillSlice fills one slice of every lane, a goroutine per lane.
func (c *computation) fillSlice(pass, slice uint32) {
	var wg sync.WaitGroup
	for lane := range c.lanes {
		wg.Go(func() { c.fillSegment(pass, lane, slice) })
	}
	wg.Wait()
}

// addresses generates the pseudo-random reference positions of the
// data-independent half of argon2id (RFC 9106 §3.4.1.2): 128 at a time, each
// block the compression of a counter block twice.
type addresses struct {
	input, out, zero, scratch block
}

func (a *addresses) next() {
	a.input[6]++
	compress(&a.out, &a.zero, &a.input, &a.scratch, false)
	compress(&a.out, &a.zero, &a.out, &a.scratch, false)
}

// fillSegment computes one lane's blocks of one slice of one pass
// (RFC 9106 §3.2 steps 5 and 6).
func (c *computation) fillSegment(pass, lane, slice uint32) {
	// argon2id: data-independent addressing for the first half of the first
	// pass, data-dependent afterwards.
	independent := pass == 0 && slice < slices/2
	var addr *addresses
	if independent {
		addr = &addresses{}
		addr.input[0], addr.input[1], addr.input[2] = uint64(pass), uint64(lane), uint64(slice)
		addr.input[3], addr.input[4], addr.input[5] = uint64(len(c.b)), uint64(c.passes), typeID
	}
	seg := c.segmentLen()
	first := uint32(0)
	if pass == 0 && slice == 0 { // so independent, too
		first = 2 // the two blocks made from H0
		addr.next()
	}
	laneStart := lane * c.laneLen
	var scratch block
	for i := first; i < seg; i++ {
		cur := laneStart + slice*seg + i
		prev := cur - 1
		if slice == 0 && i == 0 {
			prev = laneStart + c.laneLen - 1 // the lane's last block
		}
		var rnd uint64
		if independent {
			if i%blockWords == 0 {
				addr.next()
			}
			rnd = addr.out[i%blockWords]
		} else {
			rnd = c.b[prev][0]
		}
		ref := c.reference(rnd, pass, lane, slice, i)
		compress(&c.b[cur], &c.b[prev], &c.b[ref], &scratch, pass > 0) // version 0x13 XORs over older passes
	}
}

// reference maps the pseudo-random value rnd of block i of a segment to the
// index of the block it is mixed with (RFC 9106 §3.4.1.1 and §3.4.2).
func (c *computation) reference(rnd uint64, pass, lane, slice, i uint32) uint32 {
	j1, j2 := uint64(uint32(rnd)), rnd>>32
	refLane := uint32(j2 % uint64(c.lanes))
	if pass == 0 && slice == 0 {
		refLane = lane // nothing of other lanes is finished yet
	}
	seg := c.segmentLen()
	// The reference set: finished segments (all but the current slice's
	// after the first pass), plus this segment's blocks so far when in the
	// same lane; never the block just before the current one.
	var area uint32
	switch {
	case pass == 0 && refLane == lane:
		area = slice*seg + i - 1
	case pass == 0:
		area = slice * seg
		if i == 0 {
			area--
		}
	case refLane == lane:
		area = c.laneLen - seg + i - 1
	default:
		area = c.laneLen - seg
		if i == 0 {
			area--
		}
	}
	x := j1 * j1 >> 32
	y := uint64(area) * x >> 32
	rel := uint64(area) - 1 - y
	start := uint64(0)
	if pass > 0 && slice != slices-1 {
		start = uint64((slice + 1) * seg)
	}
	return refLane*c.laneLen + uint32((start+rel)%uint64(c.laneLen))
}

// tag XORs the last block of every lane and stretches it to keyLen bytes
// (RFC 9106 §3.2 steps 7 and 8).
func (c *computation) tag(keyLen uint32) []byte {
	final := c.b[c.laneLen-1]
	for lane := uint32(1); lane < c.lanes; lane++ {
		last := &c.b[lane*c.laneLen+c.laneLen-1]
		for w := range final {
			final[w] ^= last[w]
		}
	}
	var buf [blockBytes]byte
	for w, v := range final {
		binary.LittleEndian.PutUint64(buf[w*8:], v)
	}
	out := make([]byte, keyLen)
	variableHash(out, buf[:])
	return out
}
