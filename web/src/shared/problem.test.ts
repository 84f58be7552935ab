import { describe, expect, it } from 'vitest'
import { inLocale, isProblem } from './problem'

describe('problems', () => {
  it('shows the half of a bilingual detail in the page language', () => {
    const detail = '订单不存在 / no such order'
    expect(inLocale(detail, 'zh-CN')).toBe('订单不存在')
    expect(inLocale(detail, 'en')).toBe('no such order')
    expect(inLocale('plain', 'en')).toBe('plain')
    // Only the first separator splits: English halves may hold slashes themselves.
    expect(inLocale('金额 / amount in fen / yuan', 'en')).toBe('amount in fen / yuan')
  })

  it('recognises a problem body', () => {
    expect(isProblem({ type: '/problems/not-found', title: 'x', status: 404, detail: 'a / b' })).toBe(true)
    expect(isProblem({ message: 'x' })).toBe(false)
    expect(isProblem(null)).toBe(false)
  })
})
