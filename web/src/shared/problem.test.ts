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

describe('inLocale with a full stop before the slash', () => {
  it('splits 。/ as it splits a spaced slash', () => {
    const text = '您的日常保洁服务已完成，感谢使用安家。/ Your Daily cleaning is finished.'
    expect(inLocale(text, 'zh-CN')).toBe('您的日常保洁服务已完成，感谢使用安家。')
    expect(inLocale(text, 'en')).toBe('Your Daily cleaning is finished.')
  })
})
